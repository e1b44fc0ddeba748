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

# The daemons' default configs (/etc/rdb/*.toml: their printed defaults, data under
# /var/lib/rdb) and systemd units, for the `server` component.
set(RDB_PACKAGING_DIR ${PROJECT_SOURCE_DIR}/packaging)
set(RDB_DEFAULT_CONFIGS)
foreach(daemon rdb-pd rdb-server rdb-etcd)
  set(out ${PROJECT_BINARY_DIR}/packaging/${daemon}.toml)
  set(data_dir "")
  set(pd "")
  if(daemon STREQUAL "rdb-pd")
    set(data_dir /var/lib/rdb/pd)
  elseif(daemon STREQUAL "rdb-server")
    set(data_dir /var/lib/rdb/server)
    set(pd 127.0.0.1:2379)
  endif()
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DBIN=$<TARGET_FILE:${daemon}> -DOUT=${out} -DDATA_DIR=${data_dir} -DPD=${pd}
      -P ${RDB_PACKAGING_DIR}/default_config.cmake
    DEPENDS ${daemon} ${RDB_PACKAGING_DIR}/default_config.cmake
    COMMENT "Writing ${daemon}'s packaged default config")
  list(APPEND RDB_DEFAULT_CONFIGS ${out})
  install(FILES ${RDB_PACKAGING_DIR}/${daemon}.service DESTINATION lib/systemd/system COMPONENT server)
endforeach()
add_custom_target(rdb_default_configs ALL DEPENDS ${RDB_DEFAULT_CONFIGS})
install(FILES ${RDB_DEFAULT_CONFIGS} DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/rdb COMPONENT server)
install(FILES ${PROJECT_SOURCE_DIR}/docs/operations.md ${PROJECT_SOURCE_DIR}/docs/etcd.md
  DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT server)

# Debian packages (cpack -G DEB, in a build configured with -DCMAKE_INSTALL_PREFIX=/usr):
# `rdb` (the daemons, CLI, benchmark, default configs, systemd units) and `rdb-dev` (the
# client library, its headers and CMake package). Dependencies come from dpkg-shlibdeps.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME rdb)
set(CPACK_PACKAGE_VENDOR "rdb")
set(CPACK_PACKAGE_CONTACT "rdb developers <rdb@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "rdb: a distributed, replicated, transactional key-value database")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL server dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION database)
set(CPACK_DEBIAN_SERVER_PACKAGE_NAME rdb)
set(CPACK_DEBIAN_SERVER_PACKAGE_SECTION database)
set(CPACK_COMPONENT_SERVER_DESCRIPTION
  "rdb: a distributed, replicated, transactional key-value database\n rdb-pd (placement driver), rdb-server (storage node), rdb-etcd (etcd v3 API gateway),\n rdb-cli and rdb-bench, with default configs in /etc/rdb and systemd units.")
set(CPACK_DEBIAN_DEV_PACKAGE_NAME rdb-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_COMPONENT_DEV_DESCRIPTION
  "rdb's C++ client library and headers\n librdbclient, <rdb/client.h> and a CMake package: find_package(rdb CONFIG REQUIRED),\n then link rdb::client.")
# The configs are the admin's to edit: upgrades keep their changes (Debian conffiles).
set(RDB_CONFFILES ${PROJECT_BINARY_DIR}/packaging/conffiles)
file(WRITE ${RDB_CONFFILES} "")
foreach(daemon rdb-pd rdb-server rdb-etcd)
  file(APPEND ${RDB_CONFFILES} "${CMAKE_INSTALL_FULL_SYSCONFDIR}/rdb/${daemon}.toml\n")
endforeach()
set(CPACK_DEBIAN_SERVER_PACKAGE_CONTROL_EXTRA ${RDB_CONFFILES})
include(CPack)
