# Bazel's include_prefix for CMake: the headers of a package are included as
# <PREFIX/relative/path.hpp> (transports/udp.hpp as <coap/transports/udp.hpp>). In the build
# tree that layout is made of symbolic links under ${PROJECT_BINARY_DIR}/include (so an edited
# header needs no re-configure); `cmake --install` copies the headers themselves there.
#
#   coap_cpp_public_headers(<target> PREFIX <coap/transports> HEADERS <relative paths...>)
#
# The target gets the build-tree include directory (PUBLIC, or INTERFACE for an interface
# library); the installed one is set once, for all targets, by install(TARGETS ... INCLUDES).

set(COAP_CPP_STAGED_INCLUDE_DIR "${PROJECT_BINARY_DIR}/include")
# Made afresh at each configure, so that a header dropped from a list does not linger.
file(REMOVE_RECURSE "${COAP_CPP_STAGED_INCLUDE_DIR}")

function(coap_cpp_public_headers target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "PREFIX" "HEADERS")
  if(NOT arg_PREFIX OR NOT arg_HEADERS)
    message(FATAL_ERROR "coap_cpp_public_headers(${target}): PREFIX and HEADERS are required")
  endif()
  foreach(header IN LISTS arg_HEADERS)
    set(source "${CMAKE_CURRENT_SOURCE_DIR}/${header}")
    if(NOT EXISTS "${source}")
      message(FATAL_ERROR "coap_cpp_public_headers(${target}): ${source} does not exist")
    endif()
    set(staged "${COAP_CPP_STAGED_INCLUDE_DIR}/${arg_PREFIX}/${header}")
    get_filename_component(staged_dir "${staged}" DIRECTORY)
    file(MAKE_DIRECTORY "${staged_dir}")
    file(CREATE_LINK "${source}" "${staged}" SYMBOLIC)
    if(COAP_CPP_INSTALL)
      get_filename_component(relative_dir "${header}" DIRECTORY)
      install(FILES "${source}"
              DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/${arg_PREFIX}/${relative_dir}"
              COMPONENT coap_cpp_development)
    endif()
  endforeach()
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "INTERFACE_LIBRARY")
    set(scope INTERFACE)
  else()
    set(scope PUBLIC)
  endif()
  target_include_directories(${target} ${scope} "$<BUILD_INTERFACE:${COAP_CPP_STAGED_INCLUDE_DIR}>")
endfunction()
