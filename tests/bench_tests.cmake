# SPDX-License-Identifier: MIT
#
# The benchmark harness (scripts/bench.sh, docs/PERFORMANCE.md): the load
# generator saga_bench, the database-free noop_participant of the
# coordinator-only mode, and bench_test, which only checks that the
# benchmark runs on a small N and writes its JSON (a benchmark, never a
# timed test: no threshold is asserted). Included by tests/CMakeLists.txt.

add_executable(saga_bench tools/saga_bench.c)
target_link_libraries(saga_bench PRIVATE saga_protocol ${NNG_TARGET}
    Threads::Threads m)

add_executable(noop_participant tools/noop_participant.c)
target_link_libraries(noop_participant PRIVATE saga_protocol ${NNG_TARGET}
    Threads::Threads)

# bench.sh --quick on this build tree: both modes at N=200, C=8, with its
# own PostgreSQL servers and ports. RUN_SERIAL: it loads both cores and
# would distort (and be distorted by) the tests running beside it.
set(bench_test_timeout 300)
if(NOT COORD_SANITIZER STREQUAL "")
	set(bench_test_timeout 900)
endif()
add_test(NAME bench_test
    COMMAND bash "${CMAKE_CURRENT_SOURCE_DIR}/integration/bench_test.sh"
        "${PROJECT_BINARY_DIR}")
set_tests_properties(bench_test PROPERTIES
    TIMEOUT ${bench_test_timeout}
    RUN_SERIAL TRUE
    LABELS integration)

# scripts/bench-compare.sh's comparison (medians, verdicts, missing
# figures) and refusals, on made-up runs: no benchmark runs.
add_test(NAME bench_compare_test
    COMMAND bash "${CMAKE_CURRENT_SOURCE_DIR}/unit/bench_compare_test.sh")
set_tests_properties(bench_compare_test PROPERTIES
    TIMEOUT ${COORD_TEST_TIMEOUT}
    LABELS unit)
