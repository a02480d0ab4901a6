# SPDX-License-Identifier: MIT
#
# sagactl's tests: the command-line tool against a real PostgreSQL server
# and a real sagad (tests/integration/sagactl_test.c). Included by
# tests/CMakeLists.txt.

coord_test(sagactl_test SOURCES integration/sagactl_test.c
    LIBS saga_core LABELS integration)
target_compile_definitions(sagactl_test PRIVATE
    SAGACTL_PATH="$<TARGET_FILE:sagactl>")
add_dependencies(sagactl_test sagad sagactl test_participant)
