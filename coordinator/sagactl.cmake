# SPDX-License-Identifier: MIT
#
# sagactl: the operators' command-line tool (docs/cli.md). Included by
# coordinator/CMakeLists.txt.

add_executable(sagactl
    sagactl.c
    sagactl_out.c
    sagactl_db.c
    sagactl_chart.c
    sagactl_read.c
    sagactl_show.c
    sagactl_ops.c
    sagactl_inst.c)
target_link_libraries(sagactl PRIVATE saga_shell saga_core saga_protocol
    PkgConfig::PQ PkgConfig::FYAML)
target_compile_definitions(sagactl PRIVATE
    SAGA_VERSION_STRING="${PROJECT_VERSION}")
install(TARGETS sagactl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
