# SPDX-License-Identifier: MIT
#
# Integration tests of sagad (tests/integration/sagad_test.c): a real
# PostgreSQL database per test, real sagad and test_participant processes.
# Included by tests/CMakeLists.txt.
#
# sagad_pgrestart_test is the same source built with SAGAD_TEST_PGRESTART:
# it restarts the PostgreSQL server of the environment, which would disturb
# every other test running against it, hence RUN_SERIAL.

coord_test(sagad_test SOURCES integration/sagad_test.c LABELS integration)
target_compile_definitions(sagad_test PRIVATE
    SAGACTL_PATH="$<TARGET_FILE:sagactl>")
add_dependencies(sagad_test sagad sagactl test_participant)
# Some fifty tests, each with its own sagad: about 110 s on a quiet
# 2-core machine, past the default per-test timeout when the machine is
# busy (ctest -j2).
math(EXPR SAGAD_TEST_TIMEOUT "${COORD_TEST_TIMEOUT} * 3")
set_tests_properties(sagad_test PROPERTIES TIMEOUT ${SAGAD_TEST_TIMEOUT})

coord_test(sagad_pgrestart_test SOURCES integration/sagad_test.c
    LABELS integration)
target_compile_definitions(sagad_pgrestart_test PRIVATE
    SAGAD_TEST_PGRESTART=1 SAGACTL_PATH="$<TARGET_FILE:sagactl>")
add_dependencies(sagad_pgrestart_test sagad sagactl test_participant)
set_tests_properties(sagad_pgrestart_test PROPERTIES RUN_SERIAL TRUE)
