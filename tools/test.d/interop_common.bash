# Sourced (not run: it is not *.sh) by the interop stages that start servers on loopback:
#   stage_begin NAME SUMMARY TOOL...   checks the tools are on PATH, makes $work (removed on exit
#                                      with every pid in $pids), builds the example tools (or
#                                      takes them from $COAP_EXAMPLES_BIN); sets our_client,
#                                      our_server; on a failure prints "SUMMARY: 0 passed, 1 failed"
#   ok NAME, fail NAME [DETAIL]        count a check
# The sourcing script is in the repository root when it calls stage_begin.

passed=0
failed=0
pids=()
ok() { echo "ok: $1"; passed=$((passed + 1)); }
fail() {
  echo "FAIL: $1"
  failed=$((failed + 1))
  [[ -n ${2:-} ]] && echo "    $2"
}

stage_cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  sleep 0.3
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  rm -rf "$work"
}

stage_begin() {
  local name=$1 summary=$2 tool
  shift 2
  for tool in "$@" timeout python3; do
    if ! command -v "$tool" >/dev/null; then
      echo "FAIL: $tool is not on PATH (libcoap 4.3.1's tools: Debian's libcoap3-bin)"
      echo "$summary: 0 passed, 1 failed"
      exit 1
    fi
  done
  work=$(mktemp -d "${TMPDIR:-/tmp}/coap-$name.XXXXXX")
  trap stage_cleanup EXIT
  local bin
  if [[ -n ${COAP_EXAMPLES_BIN:-} ]]; then
    bin=$COAP_EXAMPLES_BIN
  else
    if ! timeout 3600 bazel build //examples:coap-client //examples:coap-server >"$work/build.log" 2>&1; then
      tail -n 40 "$work/build.log"
      echo "FAIL: bazel build //examples:coap-client //examples:coap-server"
      echo "$summary: 0 passed, 1 failed"
      exit 1
    fi
    bin=bazel-bin/examples
  fi
  our_client=$bin/coap-client
  our_server=$bin/coap-server
}
