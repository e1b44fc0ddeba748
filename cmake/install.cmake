# What `cmake --install` puts where, and the CMake package another project finds with
# find_package(rdb CONFIG REQUIRED) to link rdb::client. Components: `server` (the daemons,
# the CLI and the benchmark) and `dev` (the client library, its headers, this package).
include(CMakePackageConfigHelpers)

install(TARGETS rdb-server rdb-pd rdb-etcd rdb-cli rdb-bench RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  COMPONENT server)

set(RDB_CMAKE_PACKAGE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/rdb)
install(EXPORT rdbTargets NAMESPACE rdb:: DESTINATION ${RDB_CMAKE_PACKAGE_DIR} COMPONENT dev)
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/rdbConfig.cmake.in
  ${PROJECT_BINARY_DIR}/rdbConfig.cmake INSTALL_DESTINATION ${RDB_CMAKE_PACKAGE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/rdbConfigVersion.cmake COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/rdbConfig.cmake ${PROJECT_BINARY_DIR}/rdbConfigVersion.cmake
  DESTINATION ${RDB_CMAKE_PACKAGE_DIR} COMPONENT dev)
