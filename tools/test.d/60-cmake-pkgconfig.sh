#!/usr/bin/env bash
# Non-Bazel users (issue 15): the CMake build beside Bazel's, and what it installs.
#   - cmake configures, builds (warnings as errors) and installs the libraries into a temporary
#     prefix; the examples and tests are left out here, for time;
#   - no drift: the .cpp files CMake compiles are those Bazel's library targets compile (every
#     cc_library of //, //transports and //security: coap, udp, tcp, no_sec, tls, psk, pki, ...),
#     and the headers installed are those targets' headers at the paths Bazel consumers include;
#   - tests/cmake_consumer (find_package) and tests/pkgconfig_consumer (pkg-config) build
#     against the installed tree, without asking for C++20 themselves, and run a GET on
#     loopback: NoSec over UDP and DTLS-PSK (CMake), NoSec over TCP and TLS-PSK (pkg-config);
#   - the NoSec programs, and the NoSec package descriptions, have no Botan in them.
# Prints ok:/FAIL: lines and "cmake/pkg-config: N passed, M failed"; exits 1 on a failure.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
repo=$(pwd -P)  # CMake names files by their real path

passed=0
failed=0
ok() { echo "ok: $1"; passed=$((passed + 1)); }
fail() { echo "FAIL: $1"; failed=$((failed + 1)); }
finish() {
  echo "cmake/pkg-config: $passed passed, $failed failed"
  [ "$failed" -eq 0 ] && exit 0
  exit 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/coap-cpp-cmake.XXXXXX") || { fail "mktemp"; finish; }
trap 'rm -rf "$work"' EXIT
build=$work/build
prefix=$work/prefix
jobs=2

# step NAME LOG COMMAND...: runs COMMAND with its output in LOG, shown (the end) on failure.
step() {
  local name=$1 log=$2
  shift 2
  if "$@" >"$log" 2>&1; then
    ok "$name"
  else
    fail "$name (exit status $?); the end of its output:"
    tail -n 40 "$log" | sed 's/^/    /'
    return 1
  fi
}

# ---- the library: configure; no drift from Bazel's targets; build; install
step "cmake configure (COAP_CPP_WERROR=ON, no examples or tests)" "$work/configure.log" \
  cmake -S . -B "$build" -DCOAP_CPP_WERROR=ON -DCOAP_CPP_BUILD_EXAMPLES=OFF -DCOAP_CPP_BUILD_TESTS=OFF \
  -DCMAKE_EXPORT_COMPILE_COMMANDS=ON || finish

# Checked before the build, which a file missing from a CMakeLists.txt would break less clearly.
bazel_hpp=
bazel_sources=$(bazel query --noshow_progress \
  'kind("source file", deps(kind(cc_library, //:all + //transports:all + //security:all)))' \
  2>"$work/query.log" | grep '^//')
if [ -z "$bazel_sources" ]; then
  fail "bazel query of the library targets' sources; its output:"
  tail -n 20 "$work/query.log" | sed 's/^/    /'
else
  # //pkg:path -> pkg/path (the root package: path): the file in this repository.
  bazel_cpp=$(sed -n 's|^//\([^:]*\):\(.*\.cpp\)$|\1/\2|p' <<<"$bazel_sources" | sed 's|^/||' | sort)
  # Every "file" compile_commands.json names is a library source: the build has no other target.
  cmake_cpp=$(sed -n 's|^ *"file": "\(.*\)",\{0,1\}$|\1|p' "$build/compile_commands.json" |
    sed "s|^$repo/||" | sort)
  if [ -z "$cmake_cpp" ]; then
    fail "no source file found in $build/compile_commands.json"
  elif [ "$bazel_cpp" = "$cmake_cpp" ]; then
    ok "CMake compiles the .cpp files Bazel's library targets compile ($(wc -l <<<"$cmake_cpp") files)"
  else
    fail "the library sources differ (< only Bazel, > only CMake): mirror BUILD.bazel in the CMakeLists.txt beside it"
    diff <(echo "$bazel_cpp") <(echo "$cmake_cpp") | grep '^[<>]' | sed 's/^/    /'
  fi

  # A header's include path: Bazel's strip and include prefixes, per package (BUILD files).
  unknown=$(grep '\.hpp$' <<<"$bazel_sources" | grep -v '^//:include/\|^//transports:\|^//security:')
  bazel_hpp=$(grep '\.hpp$' <<<"$bazel_sources" |
    sed -e 's|^//:include/||' -e 's|^//transports:|coap/transports/|' -e 's|^//security:|coap/security/|' | sort)
  # CMake's: the core's glob, in place; the packages' lists, linked under build/include.
  cmake_hpp=$( (cd include && find coap -name '*.hpp') && (cd "$build/include" && find coap -type l) )
  cmake_hpp=$(sort <<<"$cmake_hpp")
  if [ -n "$unknown" ]; then
    fail "headers in a package this stage does not know the include prefix of: $(tr "\n" " " <<<"$unknown")"
  elif [ "$bazel_hpp" = "$cmake_hpp" ]; then
    ok "CMake's public headers are the Bazel targets' headers at their include paths ($(wc -l <<<"$cmake_hpp") files)"
  else
    fail "the headers differ (< only Bazel, > only CMake): mirror BUILD.bazel in the CMakeLists.txt beside it"
    diff <(echo "$bazel_hpp") <(echo "$cmake_hpp") | grep '^[<>]' | sed 's/^/    /'
  fi
fi

step "cmake --build: the libraries, without warnings" "$work/build.log" \
  cmake --build "$build" -j "$jobs" || finish
step "cmake --install --prefix <temporary prefix>" "$work/install.log" \
  cmake --install "$build" --prefix "$prefix" || finish
installed_hpp=$(cd "$prefix/include" && find . -type f | sed 's|^\./||' | sort)
if [ -z "$bazel_hpp" ]; then
  :  # the query failed, counted above
elif [ "$bazel_hpp" = "$installed_hpp" ]; then
  ok "the installed headers are those ($(wc -l <<<"$installed_hpp") files under include/)"
else
  fail "the installed headers differ (< only Bazel, > only installed):"
  diff <(echo "$bazel_hpp") <(echo "$installed_hpp") | grep '^[<>]' | sed 's/^/    /'
fi

# ---- no Botan in the NoSec package descriptions
targets_file="$prefix/lib/cmake/coap_cpp/coap_cppTargets.cmake"
pc_dir=$(dirname "$(find "$prefix" -path '*/pkgconfig/coap-cpp.pc' | head -n 1)")
export PKG_CONFIG_PATH="$pc_dir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
if [ ! -f "$targets_file" ] || [ ! -f "$pc_dir/coap-cpp.pc" ]; then
  fail "coap_cppTargets.cmake or coap-cpp.pc is not installed"
elif grep -qi botan "$targets_file"; then
  fail "coap_cppTargets.cmake (coap, udp, tcp, no_sec) mentions Botan: $(grep -i botan "$targets_file" | head -n 2)"
elif pkg-config --cflags --libs coap-cpp | grep -qi botan; then
  fail "pkg-config coap-cpp brings Botan: $(pkg-config --cflags --libs coap-cpp)"
elif ! pkg-config --libs coap-cpp-psk | grep -q 'lbotan'; then
  fail "pkg-config coap-cpp-psk does not bring Botan: $(pkg-config --libs coap-cpp-psk)"
else
  ok "no Botan in coap_cppTargets.cmake or in pkg-config coap-cpp (coap-cpp-psk has it)"
fi

# run_get PROGRAM EXPECTED: runs a consumer program, which prints the answer to its GET.
run_get() {
  local output
  output=$(timeout 60 "$1" 2>&1)
  local status=$?
  if [ "$status" -eq 0 ] && [ "$output" = "$2" ]; then
    ok "$(basename "$1") printed: $output"
  else
    fail "$(basename "$1") exited with status $status, printed: $output (expected: $2)"
  fi
}
# no_botan PROGRAM [SECURE_PROGRAM]: PROGRAM needs no libbotan; SECURE_PROGRAM, when built,
# does (so that the absence is not an artefact of readelf).
no_botan() {
  local needed
  needed=$(readelf -d "$1" | grep NEEDED)
  if grep -qi botan <<<"$needed"; then
    fail "$(basename "$1") links Botan: $(grep -i botan <<<"$needed")"
  elif [ -n "${2:-}" ] && [ -x "$2" ] && ! readelf -d "$2" | grep NEEDED | grep -qi botan; then
    fail "$(basename "$2") does not link Botan either: the check on $(basename "$1") means nothing"
  else
    ok "$(basename "$1") does not link Botan ($(wc -l <<<"$needed") shared libraries needed)"
  fi
}

# Consumers build with warnings as errors: our headers must be clean in a user's -Wall -Wextra.
consumer_flags="-Wall -Wextra -Werror"

# ---- tests/cmake_consumer: find_package(coap_cpp CONFIG)
cmake_consumer=$work/cmake_consumer
if step "tests/cmake_consumer: configure with find_package(coap_cpp) from the prefix" "$work/consumer-configure.log" \
    cmake -S tests/cmake_consumer -B "$cmake_consumer" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_CXX_FLAGS="$consumer_flags" &&
  step "tests/cmake_consumer: build (coap_cpp::coap + udp; + psk)" "$work/consumer-build.log" \
    cmake --build "$cmake_consumer" -j "$jobs"; then
  run_get "$cmake_consumer/nosec_get" "2.05 Content world"
  run_get "$cmake_consumer/psk_get" "2.05 Content consumer"
  no_botan "$cmake_consumer/nosec_get" "$cmake_consumer/psk_get"
fi

# ---- tests/pkgconfig_consumer: g++ -std=c++20 $(pkg-config --cflags --libs ...)
pc_consumer=$work/pkgconfig_consumer
mkdir -p "$pc_consumer"
pc_build() {  # pc_build NAME PACKAGE: compiles tests/pkgconfig_consumer/NAME.cpp
  # shellcheck disable=SC2046,SC2086  # pkg-config's output and the flags are word lists
  g++ -std=c++20 $consumer_flags "tests/pkgconfig_consumer/$1.cpp" -o "$pc_consumer/$1" \
    $(pkg-config --cflags --libs "$2")
}
pc_build tcp_get coap-cpp >"$work/pc-tcp.log" 2>&1 &
tcp_pid=$!
step "tests/pkgconfig_consumer: tls_psk_get.cpp with pkg-config coap-cpp-psk" "$work/pc-psk.log" \
  pc_build tls_psk_get coap-cpp-psk && psk_built=1 || psk_built=0
if wait "$tcp_pid"; then
  ok "tests/pkgconfig_consumer: tcp_get.cpp with pkg-config coap-cpp"
  run_get "$pc_consumer/tcp_get" "2.05 Content world"
  no_botan "$pc_consumer/tcp_get" "$pc_consumer/tls_psk_get"
else
  fail "tests/pkgconfig_consumer: tcp_get.cpp with pkg-config coap-cpp; the end of its output:"
  tail -n 40 "$work/pc-tcp.log" | sed 's/^/    /'
fi
[ "$psk_built" -eq 1 ] && run_get "$pc_consumer/tls_psk_get" "2.05 Content consumer"

finish
