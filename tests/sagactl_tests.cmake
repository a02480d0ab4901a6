# SPDX-License-Identifier: MIT
#
# sagactl's tests: the command-line tool against a real PostgreSQL server
# and a real sagad (tests/integration/sagactl_test.c). Included by
# tests/CMakeLists.txt.

coord_test(sagactl_test SOURCES integration/sagactl_test.c
    LIBS saga_core saga_sql Threads::Threads LABELS integration)
target_compile_definitions(sagactl_test PRIVATE
    SAGACTL_PATH="$<TARGET_FILE:sagactl>")
add_dependencies(sagactl_test sagad sagactl test_participant)

# The output helpers alone (tables, escaping): no server needed.
coord_test(sagactl_out_test SOURCES unit/sagactl_out_test.c
    "${PROJECT_SOURCE_DIR}/coordinator/sagactl_out.c"
    LIBS saga_core LABELS unit)
