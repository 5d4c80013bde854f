# pkg-config files: coap-cpp (core, udp, tcp, no_sec; no Botan), and coap-cpp-psk,
# coap-cpp-pki and coap-cpp-oscore, which require coap-cpp and botan-2. Their prefix is the one
# the tree is installed to, which `cmake --install --prefix P` may choose after configuring: so
# each file is configured twice, now with everything but the prefix, and at install time with it.

set(coap_cpp_pc_names coap-cpp)
if(COAP_CPP_SECURITY)
  list(APPEND coap_cpp_pc_names coap-cpp-psk coap-cpp-pki coap-cpp-oscore)
endif()

# Left for the install-time pass (@ONLY does not rescan a substituted value).
set(COAP_CPP_PC_PREFIX "@COAP_CPP_INSTALL_PREFIX@")
foreach(kind LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${kind}}")
    set(COAP_CPP_PC_${kind} "${CMAKE_INSTALL_${kind}}")
  else()
    set(COAP_CPP_PC_${kind} "\${prefix}/${CMAKE_INSTALL_${kind}}")
  endif()
endforeach()

# Boost has no pkg-config file: its headers' directory, unless the compiler searches it anyway.
set(COAP_CPP_PC_BOOST_CFLAGS "")
get_target_property(coap_cpp_boost_includes Boost::headers INTERFACE_INCLUDE_DIRECTORIES)
foreach(dir IN LISTS coap_cpp_boost_includes)
  if(dir AND NOT dir IN_LIST CMAKE_CXX_IMPLICIT_INCLUDE_DIRECTORIES)
    string(APPEND COAP_CPP_PC_BOOST_CFLAGS " -I${dir}")
  endif()
endforeach()
# Empty with glibc 2.34 and later, where the threads are in libc.
set(COAP_CPP_PC_THREAD_LIBS "")
if(CMAKE_THREAD_LIBS_INIT)
  set(COAP_CPP_PC_THREAD_LIBS " ${CMAKE_THREAD_LIBS_INIT}")
endif()

foreach(pc IN LISTS coap_cpp_pc_names)
  set(staged "${PROJECT_BINARY_DIR}/pkgconfig/${pc}.pc.in")
  set(final "${PROJECT_BINARY_DIR}/pkgconfig/${pc}.pc")
  configure_file("${PROJECT_SOURCE_DIR}/cmake/${pc}.pc.in" "${staged}" @ONLY)
  install(CODE "
    set(COAP_CPP_INSTALL_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
    configure_file(\"${staged}\" \"${final}\" @ONLY)
  " COMPONENT coap_cpp_development)
  install(FILES "${final}" DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig" COMPONENT coap_cpp_development)
endforeach()
