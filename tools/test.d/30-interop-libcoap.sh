#!/usr/bin/env bash
# CoAP over UDP (RFC 7252) and TCP (RFC 8323) between coap-cpp's example tools and libcoap
# 4.3.1's, on loopback:
#   1. our coap-server, libcoap's coap-client-notls (UDP)
#   2. libcoap's coap-server-notls, our coap-client (UDP)
#   3. our coap-server, our coap-client (UDP)
#   4. coap+tcp, both directions and ours with ours, with a 3000-byte payload
# Every check compares exit status, stdout and stderr exactly and prints "ok: ..." or
# "FAIL: ..."; the script exits 1 when any check failed. Every server it starts is killed
# on exit.
#
# The tools are built with Bazel (`bazel build //examples:coap-client //examples:coap-server`).
# COAP_EXAMPLES_BIN=dir uses dir/coap-client and dir/coap-server instead, without Bazel.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"

libcoap_client=coap-client-notls
libcoap_server=coap-server-notls
for tool in "$libcoap_client" "$libcoap_server" timeout; do
  if ! command -v "$tool" >/dev/null; then
    echo "FAIL: $tool is not on PATH (libcoap 4.3.1's tools: Debian's libcoap3-bin)"
    exit 1
  fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/coap-interop.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

if [[ -n ${COAP_EXAMPLES_BIN:-} ]]; then
  bin=$COAP_EXAMPLES_BIN
elif [[ -f WORKSPACE || -f WORKSPACE.bazel ]]; then
  # Bazel's output is shown only when the build fails.
  if ! timeout 3600 bazel build //examples:coap-client //examples:coap-server >"$work/build.log" 2>&1; then
    tail -n 40 "$work/build.log"
    echo "FAIL: bazel build //examples:coap-client //examples:coap-server"
    exit 1
  fi
  bin=bazel-bin/examples
else
  echo "FAIL: no WORKSPACE at $repo: cannot build //examples (or set COAP_EXAMPLES_BIN)"
  exit 1
fi
our_client=$bin/coap-client
our_server=$bin/coap-server
for tool in "$our_client" "$our_server"; do
  [[ -x $tool ]] || { echo "FAIL: $tool was not built"; exit 1; }
done

passed=0
last_command=
failed=0
ok() { echo "ok: $1"; passed=$((passed + 1)); }
fail() { echo "FAIL: $1"; failed=$((failed + 1)); }

# Every request waits at most this long (-B), and every command a little longer (timeout).
wait_seconds=5
run() {
  last_command="$*"
  timeout $((wait_seconds + 5)) "$@" >"$work/out" 2>"$work/err"
  echo $? >"$work/rc"
}

# check NAME RC STDOUT STDERR -- COMMAND...: runs COMMAND and compares all three exactly.
check() {
  local name=$1 rc=$2 out=$3 err=$4
  shift 5
  run "$@"
  printf '%s' "$out" >"$work/want_out"
  printf '%s' "$err" >"$work/want_err"
  if [[ $(cat "$work/rc") == "$rc" ]] && cmp -s "$work/out" "$work/want_out" &&
     cmp -s "$work/err" "$work/want_err"; then
    ok "$name"
  else
    fail "$name"
    report "$rc" "$out" "$err"
  fi
}

report() {
  echo "    command: $last_command"
  echo "    exit status: $(cat "$work/rc") (want $1)"
  echo "    stdout: $(od -An -c "$work/out" | head -5 | tr -s ' ')"
  echo "      want: $(printf '%s' "$2" | od -An -c | head -5 | tr -s ' ')"
  echo "    stderr: $(head -c 600 "$work/err")"
  echo "      want: $3"
}

# check_time NAME -- COMMAND...: the response is the current UTC time "Nov 25 08:27:46"
# (libcoap's /time format), read just before or just after the request.
check_time() {
  local name=$1
  shift 2
  local before after
  before=$(LC_ALL=C date -u +'%b %d %H:%M:%S')
  run "$@"
  after=$(LC_ALL=C date -u +'%b %d %H:%M:%S')
  local got
  got=$(cat "$work/out")
  if [[ $(cat "$work/rc") == 0 && ( $got == "$before" || $got == "$after" ) && ! -s "$work/err" ]] &&
     [[ $(tail -c 1 "$work/out" | od -An -c | tr -d ' ') == '\n' ]]; then
    ok "$name"
  else
    fail "$name"
    report 0 "$before"$'\n' ""
  fi
}

# A UDP port free on 127.0.0.1 and ::1 (the server that takes it is verified afterwards, so
# a race only costs a retry).
free_port() {
  python3 - 2>/dev/null <<'EOF' || echo $((20000 + RANDOM % 40000))
import socket
for _ in range(50):
    v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    v4.bind(("0.0.0.0", 0))
    port = v4.getsockname()[1]
    try:
        v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        v6.bind(("::", port))
        v6.close()
    except OSError:
        v4.close()
        continue
    v4.close()
    print(port)
    break
EOF
}

# start_libcoap_server ADDRESS: starts coap-server-notls on a free port; sets libcoap_port.
start_libcoap_server() {
  local address=$1 host=$1 attempt
  [[ $address == *:* ]] && host="[$address]"
  for attempt in 1 2 3 4 5; do
    libcoap_port=$(free_port)
    "$libcoap_server" -A "$address" -p "$libcoap_port" >"$work/libcoap-server-$libcoap_port.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    local tries
    for tries in $(seq 1 25); do
      if timeout 5 "$libcoap_client" -B 1 "coap://$host:$libcoap_port/.well-known/core" 2>/dev/null |
         grep -q 'General Info'; then
        return 0
      fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill "$pid" 2>/dev/null
  done
  return 1
}

# start_our_server: our coap-server on both 0.0.0.0 and ::, on the port it picks (-p 0, read
# back from its -v 6 log); sets our_port.
start_our_server() {
  local log=$work/our-server.log
  "$our_server" -p 0 -v 7 2>"$log" &
  pids+=("$!")
  local tries
  for tries in $(seq 1 50); do
    our_port=$(sed -n 's/^coap-server: listening on 0\.0\.0\.0:\([0-9]*\) UDP$/\1/p' "$log")
    [[ -n $our_port ]] && grep -q "listening on \[::\]:$our_port UDP" "$log" && return 0
    sleep 0.1
  done
  return 1
}

our_root='This is a test server made with coap-cpp, a C++20 CoAP library on Boost.Asio.
Resources: /time, /echo, /counter; PUT creates others. See /.well-known/core.
'
our_core='</>;title="General Info";ct=0,</time>;rt="ticks";title="Internal Clock";ct=0;obs,</echo>;title="Echo",</counter>;rt="counter";title="Request Counter";ct=0;obs'

# ---- 1. our coap-server, libcoap's coap-client ----
echo "# 1. coap-cpp coap-server <- libcoap coap-client-notls"
if start_our_server; then
  base=coap://127.0.0.1:$our_port
  lc=("$libcoap_client" -B "$wait_seconds")
  check "GET /" 0 "$our_root"$'\n' "" -- "${lc[@]}" "$base/"
  check_time "GET /time" -- "${lc[@]}" "$base/time"
  check "POST /echo" 0 $'hello echo\n' "" -- "${lc[@]}" -m post -e 'hello echo' "$base/echo"
  run "${lc[@]}" -v 7 -m put -e '{"a":1}' -t json "$base/echo"
  if grep -q "t:ACK c:2.04 .*\[ Content-Format:application/json \] :: '{\"a\":1}'" "$work/out"; then
    ok "PUT /echo: 2.04 with the payload and content-format"
  else
    fail "PUT /echo: 2.04 with the payload and content-format"
    report 0 "... t:ACK c:2.04 ... [ Content-Format:application/json ] :: '{\"a\":1}'" ""
  fi
  check "PUT /x creates" 0 "" "" -- "${lc[@]}" -m put -e 'stored text' -t text "$base/x"
  check "GET /x" 0 $'stored text\n' "" -- "${lc[@]}" "$base/x"
  check "/.well-known/core?rt=dynamic lists /x" 0 \
    '</x>;rt="dynamic";title="Created by PUT";ct=0;obs'$'\n' "" -- "${lc[@]}" "$base/.well-known/core?rt=dynamic"
  check "PUT /x replaces" 0 "" "" -- "${lc[@]}" -m put -e 'replaced' "$base/x"
  check "GET /x after PUT" 0 $'replaced\n' "" -- "${lc[@]}" "$base/x"
  check "DELETE /x" 0 "" "" -- "${lc[@]}" -m delete "$base/x"
  check "GET /x after DELETE: 4.04" 0 "" $'4.04 Not Found\n' -- "${lc[@]}" "$base/x"
  check "DELETE /time: 4.05" 0 "" $'4.05 Method Not Allowed\n' -- "${lc[@]}" -m delete "$base/time"
  check "POST /counter" 0 $'1\n' "" -- "${lc[@]}" -m post "$base/counter"
  check "POST /counter again" 0 $'2\n' "" -- "${lc[@]}" -m post "$base/counter"
  check "GET /counter" 0 $'2\n' "" -- "${lc[@]}" "$base/counter"
  check "NON GET /" 0 "$our_root"$'\n' "" -- "${lc[@]}" -N "$base/"
  check "GET / over IPv6" 0 "$our_root"$'\n' "" -- "${lc[@]}" "coap://[::1]:$our_port/"
  check "GET /.well-known/core" 0 "$our_core"$'\n' "" -- "${lc[@]}" "$base/.well-known/core"
else
  fail "our coap-server did not start: $(head -c 300 "$work/our-server.log")"
fi

# ---- 2. libcoap's coap-server, our coap-client ----
echo "# 2. libcoap coap-server-notls <- coap-cpp coap-client"
oc=("$our_client" -B "$wait_seconds")
libcoap_root='This is a test server made with libcoap (see https://libcoap.net)
Copyright (C) 2010--2022 Olaf Bergmann <bergmann@tzi.org> and others

'
if start_libcoap_server 127.0.0.1; then
  base=coap://127.0.0.1:$libcoap_port
  # The expected outputs are libcoap's own client's, against the same server.
  libcoap_core=$(timeout 10 "$libcoap_client" -B "$wait_seconds" "$base/.well-known/core")
  check "GET /" 0 "$libcoap_root"$'\n' "" -- "${oc[@]}" "$base/"
  check "GET /.well-known/core (as libcoap's client prints it)" 0 "$libcoap_core"$'\n' "" -- \
    "${oc[@]}" "$base/.well-known/core"
  check_time "GET /time" -- "${oc[@]}" "$base/time"
  if [[ $libcoap_core == *'</example_data>'* ]]; then
    check "PUT /example_data" 0 "" "" -- "${oc[@]}" -m put -e 'from coap-cpp' -t text "$base/example_data"
    check "GET /example_data" 0 $'from coap-cpp\n' "" -- "${oc[@]}" "$base/example_data"
    printf 'line one\nline two' >"$work/payload"
    check "PUT /example_data with -f" 0 "" "" -- "${oc[@]}" -m put -f "$work/payload" "$base/example_data"
    check "GET /example_data after -f" 0 $'line one\nline two\n' "" -- "${oc[@]}" "$base/example_data"
    # libcoap 4.3.1's example_data takes GET and PUT only.
    check "DELETE /example_data: 4.05 and libcoap's diagnostic" 0 "" $'4.05 Method Not Allowed\n' -- \
      "${oc[@]}" -m delete "$base/example_data"
  else
    fail "libcoap's server lists no /example_data: $libcoap_core"
  fi
  check "GET /missing: 4.04" 0 "" $'4.04 Not Found\n' -- "${oc[@]}" "$base/missing"
  check "NON GET /" 0 "$libcoap_root"$'\n' "" -- "${oc[@]}" -N "$base/"
  check "NON GET /missing: 4.04" 0 "" $'4.04 Not Found\n' -- "${oc[@]}" -N "$base/missing"
  check "GET / with -T token" 0 "$libcoap_root"$'\n' "" -- "${oc[@]}" -T abc "$base/"
else
  fail "libcoap's coap-server-notls did not start on 127.0.0.1"
fi
if start_libcoap_server ::1; then
  check "GET / over IPv6" 0 "$libcoap_root"$'\n' "" -- "${oc[@]}" "coap://[::1]:$libcoap_port/"
  check "NON GET / over IPv6" 0 "$libcoap_root"$'\n' "" -- "${oc[@]}" -N "coap://[::1]:$libcoap_port/"
else
  fail "libcoap's coap-server-notls did not start on ::1"
fi
check "PSK flags on a coap:// URI are refused" 1 "" $'coap-client: security flags need a coaps:// or coaps+tcp:// URI\n' -- \
  "${oc[@]}" -u id -k key coap://127.0.0.1/
check "http:// is not a CoAP URI" 1 "" $'coap-client: invalid CoAP URI \'http://127.0.0.1/\': unsupported URI scheme\n' -- \
  "${oc[@]}" http://127.0.0.1/

# ---- 3. our coap-server, our coap-client ----
echo "# 3. coap-cpp coap-server <- coap-cpp coap-client"
if [[ -n ${our_port:-} ]]; then
  base=coap://127.0.0.1:$our_port
  check "GET /" 0 "$our_root"$'\n' "" -- "${oc[@]}" "$base/"
  check "PUT /a/b creates" 0 "" "" -- "${oc[@]}" -m put -e 'nested' "$base/a/b"
  check "GET /a/b" 0 $'nested\n' "" -- "${oc[@]}" "$base/a/b"
  check "POST /echo, percent-decoded -e" 0 $'a b\n' "" -- "${oc[@]}" -m post -e 'a%20b' "$base/echo"
  check "DELETE /a/b" 0 "" "" -- "${oc[@]}" -m delete "$base/a/b"
  check "GET /a/b after DELETE: 4.04" 0 "" $'4.04 Not Found\n' -- "${oc[@]}" "$base/a/b"
  check "NON GET / over IPv6" 0 "$our_root"$'\n' "" -- "${oc[@]}" -N "coap://[::1]:$our_port/"
  # A request to a port where nothing answers ends after -B seconds, as an error.
  silent_port=$(free_port)
  check "no answer: timeout after -B" 1 "" $'coap-client: no response within 1 s\n' -- \
    "$our_client" -B 1 "coap://127.0.0.1:$silent_port/"
fi

# ---- 4. coap+tcp ----
echo "# 4. coap+tcp (RFC 8323)"
head -c 3000 /dev/zero | tr '\0' 'b' >"$work/big"
big=$(cat "$work/big")
if [[ -n ${our_port:-} ]]; then
  base=coap+tcp://127.0.0.1:$our_port
  lc=("$libcoap_client" -B "$wait_seconds")
  check "libcoap -> ours: GET /" 0 "$our_root"$'\n' "" -- "${lc[@]}" "$base/"
  check "libcoap -> ours: PUT 3000 bytes" 0 "" "" -- "${lc[@]}" -m put -f "$work/big" "$base/big"
  check "libcoap -> ours: GET 3000 bytes" 0 "$big"$'\n' "" -- "${lc[@]}" "$base/big"
  check "libcoap -> ours: GET /missing: 4.04" 0 "" $'4.04 Not Found\n' -- "${lc[@]}" "$base/missing"
  check "libcoap -> ours: GET / over IPv6" 0 "$our_root"$'\n' "" -- "${lc[@]}" "coap+tcp://[::1]:$our_port/"
  check "ours -> ours: POST /echo" 0 $'tcp echo\n' "" -- "${oc[@]}" -m post -e 'tcp echo' "$base/echo"
  check "ours -> ours: GET 3000 bytes" 0 "$big"$'\n' "" -- "${oc[@]}" "$base/big"
fi
if start_libcoap_server 127.0.0.1; then
  base=coap+tcp://127.0.0.1:$libcoap_port
  check "ours -> libcoap: GET /" 0 "$libcoap_root"$'\n' "" -- "${oc[@]}" "$base/"
  check "ours -> libcoap: PUT 3000 bytes" 0 "" "" -- "${oc[@]}" -m put -f "$work/big" "$base/example_data"
  check "ours -> libcoap: GET 3000 bytes" 0 "$big"$'\n' "" -- "${oc[@]}" "$base/example_data"
  check "ours -> libcoap: GET /missing: 4.04" 0 "" $'4.04 Not Found\n' -- "${oc[@]}" "$base/missing"
else
  fail "libcoap's coap-server-notls did not start for TCP"
fi

echo "interop: $passed passed, $failed failed"
[[ $failed == 0 ]]
