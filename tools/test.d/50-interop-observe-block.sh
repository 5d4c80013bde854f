#!/usr/bin/env bash
# Observe (RFC 7641) and block-wise transfer (RFC 7959; RFC 8323 section 6 over TCP) between
# coap-cpp's example tools and libcoap 4.3.1's, on loopback, over coap, coap+tcp, coaps and
# coaps+tcp (PSK):
#   1. our coap-server <- libcoap's coap-client (-s observe, -b block size, -f upload, -o download)
#   2. libcoap's coap-server <- our coap-client (the same flags)
#   3. our coap-server <- our coap-client
# Prints "ok: ..." or "FAIL: ..." per check; exits 1 when any check failed. Every server it
# starts is killed on exit. COAP_EXAMPLES_BIN=dir uses dir/coap-client and dir/coap-server.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"

lc_client=coap-client-openssl   # speaks coap, coap+tcp, coaps and coaps+tcp
lc_server=coap-server-openssl
# shellcheck source=tools/test.d/interop_common.bash
source tools/test.d/interop_common.bash
stage_begin observe-block "observe/block interop" "$lc_client" "$lc_server"

key=secretPSK
identity=coap-client

# A free port P on 127.0.0.1 with P+1 free too (UDP and TCP), for a server's coap and coaps.
free_port_pair() {
  python3 - <<'EOF'
import socket, random
for _ in range(200):
    p = random.randrange(20000, 30000)
    try:
        for port in (p, p + 1):
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                s = socket.socket(socket.AF_INET, kind)
                s.bind(("127.0.0.1", port))
                s.close()
    except OSError:
        continue
    print(p)
    break
EOF
}

# start_server NAME COMMAND...: runs COMMAND (which must take -p PORT last) until coap:// and
# coaps:// (PSK) answer; sets port.
start_server() {
  local name=$1
  shift
  local attempt
  for attempt in 1 2 3; do
    port=$(free_port_pair)
    "$@" -p "$port" >"$work/$name-$port.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    local _
    for _ in $(seq 1 50); do
      if timeout 3 "$lc_client" -B 1 "coap://127.0.0.1:$port/.well-known/core" 2>/dev/null | grep -q 'time' &&
         timeout 3 "$lc_client" -B 1 -u "$identity" -k "$key" "coaps+tcp://127.0.0.1:$((port + 1))/.well-known/core" \
           2>/dev/null | grep -q 'time'; then
        return 0
      fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill "$pid" 2>/dev/null
  done
  fail "$name did not start: $(tail -c 300 "$work/$name-$port.log" 2>/dev/null)"
  return 1
}

# The URI of PATH on the server at port for SCHEME, and the client flags it needs.
uri() {
  case $1 in
    coap | coap+tcp) echo "$1://127.0.0.1:$port/$2" ;;
    *) echo "$1://127.0.0.1:$((port + 1))/$2" ;;
  esac
}
psk_flags() { [[ $1 == coaps* ]] && echo "-u $identity -k $key"; }

# A body of 6,000 bytes (printable, so that clients that print it can be compared) and one of
# 100,000 bytes for BERT-sized transfers.
python3 -c "import random; random.seed(7); print(''.join(random.choice('abcdefghij0123456789') for _ in range(5999)))" >"$work/six.txt"
python3 -c "import random; random.seed(8); print(''.join(random.choice('klmnopqrst0123456789') for _ in range(99999)))" >"$work/big.txt"

# observe_time NAME CLIENT...: observing /time for 3 s prints at least 3 notifications, each a
# distinct time of the form "Dec 02 12:14:57".
observe_time() {
  local name=$1
  shift
  timeout 15 "$@" >"$work/obs.out" 2>"$work/obs.err"
  local rc=$? lines distinct
  lines=$(grep -cE '^[A-Z][a-z]{2} [0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$' "$work/obs.out")
  distinct=$(grep -E '^[A-Z][a-z]{2} [0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$' "$work/obs.out" | sort -u | wc -l)
  if [[ $rc == 0 && $lines -ge 3 && $distinct -ge 3 ]]; then
    ok "$name ($lines notifications)"
  else
    fail "$name" "exit $rc, $lines lines, $distinct distinct: $(head -c 300 "$work/obs.out") $(head -c 300 "$work/obs.err")"
  fi
}

# upload_download NAME SCHEME SIZE CLIENT...: PUT FILE block-wise with -b SIZE to a new path,
# GET it back with -o, compare.
upload_download() {
  local name=$1 scheme=$2 size=$3 file=$4
  shift 4
  local path="up$RANDOM$RANDOM"
  # shellcheck disable=SC2046
  # Both clients exit 0 after a 4.xx/5.xx answer (it is printed on stderr): look for it too.
  if ! timeout 30 "$@" $(psk_flags "$scheme") -m put -b "$size" -f "$file" "$(uri "$scheme" "$path")" \
       >"$work/put.out" 2>"$work/put.err" || grep -qE '^[45]\.[0-9]{2}' "$work/put.err"; then
    fail "$name: PUT" "$(head -c 300 "$work/put.out") $(head -c 300 "$work/put.err")"
    return
  fi
  rm -f "$work/got"
  # shellcheck disable=SC2046
  timeout 30 "$@" $(psk_flags "$scheme") -b "$size" -o "$work/got" "$(uri "$scheme" "$path")" \
    >"$work/get.out" 2>"$work/get.err"
  if cmp -s "$file" "$work/got"; then
    ok "$name ($(wc -c <"$file") bytes, -b $size)"
  else
    fail "$name" "got $(if [[ -f $work/got ]]; then wc -c <"$work/got"; else echo no; fi) bytes: $(head -c 300 "$work/get.err")"
  fi
}

# observe_counter NAME SCHEME CLIENT...: observes /counter while three POSTs raise it; each
# new value arrives, in order.
observe_counter() {
  local name=$1 scheme=$2
  shift 2
  # shellcheck disable=SC2046
  timeout 15 "$@" $(psk_flags "$scheme") -s 4 -w "$(uri "$scheme" counter)" >"$work/counter.out" 2>&1 &
  local watcher=$!
  sleep 1
  local i
  for i in 1 2 3; do
    # shellcheck disable=SC2046
    timeout 5 "$lc_client" $(psk_flags "$scheme") -m post "$(uri "$scheme" counter)" >/dev/null 2>&1
    sleep 0.3
  done
  wait "$watcher"
  local values
  values=$(grep -E '^[0-9]+$' "$work/counter.out" | tr '\n' ' ')
  local first
  first=$(grep -E '^[0-9]+$' "$work/counter.out" | head -1)
  if [[ -n $first && $values == "$first $((first + 1)) $((first + 2)) $((first + 3)) " ]]; then
    ok "$name: $values"
  else
    fail "$name" "values: '$values' (want four consecutive numbers)"
  fi
}

schemes=(coap coap+tcp coaps coaps+tcp)

# ---- 1. our coap-server <- libcoap's coap-client ----
echo "# 1. coap-cpp coap-server <- libcoap $lc_client"
if start_server our-server "$our_server" -A 127.0.0.1 -k "$key" -v 6; then
  for scheme in "${schemes[@]}"; do
    # shellcheck disable=SC2046
    observe_time "libcoap -> ours, $scheme: -s 3 /time" "$lc_client" $(psk_flags "$scheme") -s 3 -w "$(uri "$scheme" time)"
    observe_counter "libcoap -> ours, $scheme: observe /counter across POSTs" "$scheme" "$lc_client"
    upload_download "libcoap -> ours, $scheme: block-wise PUT then GET" "$scheme" 64 "$work/six.txt" "$lc_client"
  done
  upload_download "libcoap -> ours, coap: block-wise PUT then GET of 100 kB" coap 1024 "$work/big.txt" "$lc_client"
  upload_download "libcoap -> ours, coap+tcp: PUT then GET of 100 kB (BERT offered)" coap+tcp 1024 "$work/big.txt" "$lc_client"
  # -b 16: the smallest blocks, a representation the server builds (/.well-known/core).
  # shellcheck disable=SC2046
  if timeout 15 "$lc_client" -b 16 "$(uri coap .well-known/core)" 2>&1 | grep -q '</time>;rt="ticks"'; then
    ok "libcoap -> ours, coap: GET /.well-known/core in 16-byte blocks"
  else
    fail "libcoap -> ours, coap: GET /.well-known/core in 16-byte blocks"
  fi
fi

# ---- 2. libcoap's coap-server <- our coap-client ----
echo "# 2. libcoap $lc_server <- coap-cpp coap-client"
if ! "$our_client" --help 2>&1 | grep -q -- '-s '; then
  fail "our coap-client has no -s (observe): stage 2 and 3 not run"
else
  # -d: libcoap's server creates a resource on PUT only when allowed (else 4.04).
  if start_server libcoap-server "$lc_server" -A 127.0.0.1 -k "$key" -d 50; then
    for scheme in "${schemes[@]}"; do
      # shellcheck disable=SC2046
      observe_time "ours -> libcoap, $scheme: -s 3 /time" "$our_client" $(psk_flags "$scheme") -s 3 -w "$(uri "$scheme" time)"
      upload_download "ours -> libcoap, $scheme: block-wise PUT then GET" "$scheme" 64 "$work/six.txt" "$our_client"
    done
    upload_download "ours -> libcoap, coap: block-wise PUT then GET of 100 kB" coap 1024 "$work/big.txt" "$our_client"
  fi
  echo "# 3. coap-cpp coap-server <- coap-cpp coap-client"
  if start_server our-server-2 "$our_server" -A 127.0.0.1 -k "$key" -v 6; then
    for scheme in "${schemes[@]}"; do
      # shellcheck disable=SC2046
      observe_time "ours -> ours, $scheme: -s 3 /time" "$our_client" $(psk_flags "$scheme") -s 3 -w "$(uri "$scheme" time)"
      observe_counter "ours -> ours, $scheme: observe /counter across POSTs" "$scheme" "$our_client"
      upload_download "ours -> ours, $scheme: block-wise PUT then GET" "$scheme" 64 "$work/six.txt" "$our_client"
    done
    upload_download "ours -> ours, coap+tcp: PUT then GET of 100 kB" coap+tcp 1024 "$work/big.txt" "$our_client"
  fi
fi

echo "observe/block interop: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
