# Compiler flags for coap-cpp's own code (library, tests, examples, benchmarks); third-party
# code is built without them. The language standard is set for everything in .bazelrc.
# -Werror is not here: .bazelrc adds it to this repository's own files only (--per_file_copt),
# so a workspace that uses coap-cpp as an external repository is never stopped by a warning a
# newer compiler finds in our code.
# Every flag here is understood by both GCC 12 and Clang 14. (-Wconversion is not here: Clang
# includes -Wsign-conversion in it, GCC does not, so code clean under one fails the other.)
COAP_COPTS = [
    "-Wall",
    "-Wextra",
    "-Wpedantic",
    "-Wold-style-cast",
    "-Wnon-virtual-dtor",
    "-Woverloaded-virtual",
    "-Wimplicit-fallthrough",
    "-Wcast-align",
    "-Wformat=2",
]
