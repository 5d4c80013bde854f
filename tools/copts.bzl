# Compiler flags for coap-cpp's own code (library, tests, examples, benchmarks); third-party
# code is built without them. The language standard is set for everything in .bazelrc.
# Every flag here is understood by both GCC 12 and Clang 14. (-Wconversion is not here: Clang
# includes -Wsign-conversion in it, GCC does not, so code clean under one fails the other.)
COAP_COPTS = [
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wpedantic",
    "-Wold-style-cast",
    "-Wnon-virtual-dtor",
    "-Woverloaded-virtual",
    "-Wimplicit-fallthrough",
    "-Wcast-align",
    "-Wformat=2",
]
