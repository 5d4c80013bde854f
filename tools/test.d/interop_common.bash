# Sourced (not run: it is not *.sh) by the interop stages that start servers on loopback:
#   stage_begin NAME SUMMARY TOOL...   checks the tools are on PATH, makes $work (removed on exit
#                                      with every pid in $pids), builds the example tools (or
#                                      takes them from $COAP_EXAMPLES_BIN); sets our_client,
#                                      our_server; on a failure prints "SUMMARY: 0 passed, 1 failed"
#   ok NAME, fail NAME [DETAIL]        count a check
#   free_port                          a port free on 127.0.0.1 for both UDP and TCP
#   start NAME PORT COMMAND...         runs COMMAND in the background (its pid in $pids, its
#                                      output in $work/NAME.log) until $lc_client gets any answer
#                                      from coap://127.0.0.1:PORT/.well-known/core
#   check NAME EXPECTED COMMAND...     COMMAND's stdout+stderr (within $check_timeout seconds,
#                                      15 unless set) must contain EXPECTED
# The sourcing script is in the repository root when it calls stage_begin, and sets lc_client
# before it calls start.

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

free_port() {
  python3 - <<'PY'
import socket, random
for _ in range(200):
    p = random.randrange(20000, 40000)
    try:
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            s = socket.socket(socket.AF_INET, kind)
            s.bind(("127.0.0.1", p))
            s.close()
    except OSError:
        continue
    print(p)
    break
PY
}

# Any answer will do, 4.01 included: a server may require OSCORE or a proxy refuse.
start() {
  local name=$1 port=$2
  shift 2
  "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do
    if timeout 2 "$lc_client" -B 1 "coap://127.0.0.1:$port/.well-known/core" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  fail "$name did not start" "$(tail -n 5 "$work/$name.log")"
  return 1
}

check() {
  local name=$1 expected=$2
  shift 2
  local out
  out=$(timeout "${check_timeout:-15}" "$@" 2>&1)
  if [[ $out == *"$expected"* ]]; then ok "$name"; else fail "$name" "got: ${out:0:300}"; fi
}
