# coap-cpp's external repositories, all offline: Bazel 4.2.3 (Debian's bazel-bootstrap) and the
# Debian packages tools/setup installs. Use from any workspace:
#
#   local_repository(name = "coap_cpp", path = "...")
#   load("@coap_cpp//:deps.bzl", "coap_cpp_dependencies")
#   coap_cpp_dependencies()
#
# A repository the calling WORKSPACE defined before the call is left alone, so a consumer can
# bring its own (say, a real rules_cc for a newer Bazel).

load("@bazel_tools//tools/build_defs/repo:utils.bzl", "maybe")

# The probe for _multiarch_libdir's fallback: every machine that builds coap-cpp has Botan.
_PROBE_LIBRARY = "libbotan-2.so"

def _multiarch_libdir(repository_ctx):
    """Debian's multiarch library directory: /usr/lib/x86_64-linux-gnu, /usr/lib/aarch64-linux-gnu, ...

    Asks the compiler (`gcc -print-multiarch`, the triplet Debian names the directory after); if
    there is no gcc or it prints nothing, takes the /usr/lib/*-linux-gnu that holds
    libbotan-2.so.
    """
    gcc = repository_ctx.which("gcc")
    if gcc:
        result = repository_ctx.execute([gcc, "-print-multiarch"])
        triplet = result.stdout.strip()
        if result.return_code == 0 and triplet:
            libdir = "/usr/lib/" + triplet
            if repository_ctx.path(libdir).exists:
                return libdir
    candidates = []
    for entry in repository_ctx.path("/usr/lib").readdir():
        if entry.basename.endswith("-linux-gnu") and entry.get_child(_PROBE_LIBRARY).exists:
            candidates.append(str(entry))
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        fail("several multiarch library directories hold %s (%s) and `gcc -print-multiarch` did not choose: install gcc" % (_PROBE_LIBRARY, ", ".join(candidates)))
    fail("no /usr/lib/*-linux-gnu holds %s: install the Debian package libbotan-2-dev (tools/setup does)" % _PROBE_LIBRARY)

def _files_repository_impl(repository_ctx):
    for path, package in repository_ctx.attr.requires.items():
        if not repository_ctx.path(path).exists:
            fail("%s not found: install the Debian package %s (tools/setup does)" % (path, package))
    if repository_ctx.attr.requires_libraries:
        libdir = _multiarch_libdir(repository_ctx)
        for library, package in repository_ctx.attr.requires_libraries.items():
            path = libdir + "/" + library
            if not repository_ctx.path(path).exists:
                fail("%s not found: install the Debian package %s (tools/setup does)" % (path, package))
    for label, destination in repository_ctx.attr.files.items():
        repository_ctx.symlink(repository_ctx.path(label), destination)
    for destination, target in repository_ctx.attr.system_paths.items():
        repository_ctx.symlink(target, destination)
    repository_ctx.file("WORKSPACE", 'workspace(name = "%s")\n' % repository_ctx.name)
    if not repository_ctx.path("BUILD.bazel").exists:
        repository_ctx.file("BUILD.bazel", "")

# A repository made of files from this one's third_party/ and, optionally, system directories.
# The files are found through Labels, which resolve against the repository this .bzl file is
# in, so the rule works the same from coap-cpp's own WORKSPACE and from a consumer's.
_files_repository = repository_rule(
    implementation = _files_repository_impl,
    attrs = {
        # File in //third_party -> its path in the new repository.
        "files": attr.label_keyed_string_dict(allow_files = True),
        # Path in the new repository -> absolute system path it links to.
        "system_paths": attr.string_dict(),
        # Absolute system path that must exist -> the Debian package that provides it.
        "requires": attr.string_dict(),
        # Library that must exist in the multiarch library directory (/usr/lib/<triplet>,
        # found when the repository is made) -> the Debian package that provides it.
        "requires_libraries": attr.string_dict(),
    },
    # The multiarch directory is found through the gcc on PATH.
    environ = ["PATH"],
)

def coap_cpp_dependencies():
    """Defines the repositories coap-cpp needs that the calling workspace has not defined."""

    # Bazel 4.2.3 would download these three; @bazel_tools needs them even for C++-only builds.
    maybe(
        _files_repository,
        name = "rules_cc",
        files = {
            Label("//third_party:rules_cc/defs.bzl"): "cc/defs.bzl",
            Label("//third_party:rules_cc/cc.BUILD"): "cc/BUILD.bazel",
        },
    )
    maybe(
        _files_repository,
        name = "rules_java",
        files = {
            Label("//third_party:rules_java/defs.bzl"): "java/defs.bzl",
            Label("//third_party:rules_java/java.BUILD"): "java/BUILD.bazel",
        },
    )
    maybe(
        _files_repository,
        name = "remote_coverage_tools",
        files = {
            Label("//third_party:remote_coverage_tools/remote_coverage_tools.BUILD"): "BUILD.bazel",
        },
    )

    # System libraries (Debian packages).
    maybe(
        _files_repository,
        name = "boost",
        files = {Label("//third_party:boost/boost.BUILD"): "BUILD.bazel"},
        requires = {"/usr/include/boost/version.hpp": "libboost1.81-all-dev"},
        requires_libraries = {
            "libboost_unit_test_framework.so": "libboost1.81-all-dev",
            "libboost_program_options.so": "libboost1.81-all-dev",
        },
    )
    maybe(
        _files_repository,
        name = "botan",
        files = {Label("//third_party:botan/botan.BUILD"): "BUILD.bazel"},
        system_paths = {"include/botan": "/usr/include/botan-2/botan"},
        requires = {"/usr/include/botan-2/botan/tls_server.h": "libbotan-2-dev"},
        requires_libraries = {"libbotan-2.so": "libbotan-2-dev"},
    )
    maybe(
        _files_repository,
        name = "libcoap",
        files = {Label("//third_party:libcoap/libcoap.BUILD"): "BUILD.bazel"},
        requires = {"/usr/include/coap3/coap.h": "libcoap3-dev"},
        requires_libraries = {"libcoap-3-notls.so": "libcoap3-dev"},
    )
    maybe(
        _files_repository,
        name = "benchmark",
        files = {Label("//third_party:benchmark/benchmark.BUILD"): "BUILD.bazel"},
        requires = {"/usr/include/benchmark/benchmark.h": "libbenchmark-dev"},
        requires_libraries = {"libbenchmark.so": "libbenchmark-dev"},
    )
