# SPDX-License-Identifier: MIT
#
# The process-level chaos test (docs/RELIABILITY.md, "Process-level
# chaos"): its tools and a short bounded run of scripts/chaos.sh. Included
# by tests/CMakeLists.txt.
#
#   chaos_proxy  a fault-injecting proxy between sagad and a participant:
#                raw nng sockets forwarding whole messages, a seeded share
#                of them dropped, duplicated or delayed;
#   chaos_load   the load generator: create_order sagas at a steady rate,
#                each start retried under its idempotency key until sagad
#                answers it.
#
# chaos_test runs scripts/chaos.sh on this build (chaos_test_two_instances
# with two sagad instances on the database) with its own cluster
# (its own PostgreSQL server, which it restarts, and its own ports): it
# kills processes with kill -9, hence RUN_SERIAL, so that it does not
# compete for the machine with the other tests and their timeouts.

add_executable(chaos_proxy tools/chaos_proxy.c)
target_link_libraries(chaos_proxy PRIVATE ${NNG_TARGET} Threads::Threads)

add_executable(chaos_load tools/chaos_load.c)
target_link_libraries(chaos_load PRIVATE saga_shell saga_protocol
    Threads::Threads)

set(chaos_test_timeout 300)
if(NOT COORD_SANITIZER STREQUAL "")
	math(EXPR chaos_test_timeout "${chaos_test_timeout} * 3")
endif()
add_test(NAME chaos_test
    COMMAND bash "${CMAKE_CURRENT_SOURCE_DIR}/integration/chaos_test.sh"
        "${PROJECT_BINARY_DIR}")
add_test(NAME chaos_test_two_instances
    COMMAND bash "${CMAKE_CURRENT_SOURCE_DIR}/integration/chaos_test.sh"
        "${PROJECT_BINARY_DIR}" 2)
set_tests_properties(chaos_test chaos_test_two_instances PROPERTIES
    TIMEOUT ${chaos_test_timeout}
    RUN_SERIAL TRUE
    LABELS integration)
