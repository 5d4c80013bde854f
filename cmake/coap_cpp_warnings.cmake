# coap-cpp's warning flags, read from tools/copts.bzl so that Bazel and CMake build our own code
# with the same list (one place for them). -Werror is in that list for Bazel; here it is kept
# only when COAP_CPP_WERROR is ON, and the flags are PRIVATE to our targets: a consumer gets
# neither our warnings nor -Werror.
#
#   coap_cpp_warnings(<target>)

file(READ "${PROJECT_SOURCE_DIR}/tools/copts.bzl" _coap_cpp_copts_bzl)
# The list is the brackets after "COAP_COPTS =": one string literal per flag.
if(NOT _coap_cpp_copts_bzl MATCHES "COAP_COPTS[ \t]*=[ \t]*\\[([^]]*)\\]")
  message(FATAL_ERROR "tools/copts.bzl: no COAP_COPTS = [...] list found")
endif()
string(REGEX MATCHALL "\"[^\"]+\"" _coap_cpp_copts "${CMAKE_MATCH_1}")
list(TRANSFORM _coap_cpp_copts REPLACE "\"" "")
if(NOT _coap_cpp_copts)
  message(FATAL_ERROR "tools/copts.bzl: COAP_COPTS is empty or not a list of strings")
endif()
list(REMOVE_ITEM _coap_cpp_copts "-Werror")
if(COAP_CPP_WERROR)
  list(APPEND _coap_cpp_copts "-Werror")
endif()
set(COAP_CPP_WARNING_FLAGS ${_coap_cpp_copts})

function(coap_cpp_warnings target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE ${COAP_CPP_WARNING_FLAGS})
  endif()
endfunction()
