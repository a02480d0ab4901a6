# SPDX-License-Identifier: MIT
#
# Tests of the participant library (participants/): the barrier's pure
# decision (unit), the library against PostgreSQL and nng (integration),
# and the installed library as a participant outside this repository sees
# it (install_test.sh: cmake --install into a temporary prefix of the
# build tree, then build and run the example with pkg-config alone).

coord_test(barrier_decide_test SOURCES unit/barrier_decide_test.c
    LIBS saga_barrier LABELS unit)

coord_test(participant_test SOURCES integration/participant_test.c
    LIBS saga-participant LABELS integration)
target_compile_definitions(participant_test PRIVATE
    ECHO_PATH="$<TARGET_FILE:participant_echo>")
add_dependencies(participant_test participant_echo)

# The example is linked by the test with the same sanitizer as the
# archive it links.
set(install_test_cflags "")
if(COORD_SANITIZER STREQUAL "address")
	set(install_test_cflags "-fsanitize=address,undefined")
elseif(COORD_SANITIZER STREQUAL "undefined")
	set(install_test_cflags "-fsanitize=undefined")
elseif(COORD_SANITIZER STREQUAL "thread")
	set(install_test_cflags "-fsanitize=thread")
endif()
if(COORD_FUZZ)
	set(install_test_cflags "-fsanitize=fuzzer-no-link,address,undefined")
endif()
if(TARGET sagactl)
	set(install_test_sagactl 1)
else()
	set(install_test_sagactl 0)
endif()
add_test(NAME install_test
    COMMAND sh "${CMAKE_CURRENT_SOURCE_DIR}/integration/install_test.sh"
        "${CMAKE_BINARY_DIR}" "${CMAKE_INSTALL_LIBDIR}"
        "${CMAKE_INSTALL_DOCDIR}" "${CMAKE_C_COMPILER}"
        "${install_test_cflags}" "${install_test_sagactl}")
set_tests_properties(install_test PROPERTIES
    TIMEOUT ${COORD_TEST_TIMEOUT}
    LABELS integration)
