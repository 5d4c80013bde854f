#!/usr/bin/env bash
# RFC 8613 (OSCORE) between coap-cpp's tools and libcoap 4.3.5's (built from ../shared/peers by
# its build-libcoap; Debian's 4.3.1 has no OSCORE), on loopback, over coap and coap+tcp, with
# the contexts of tools/test.d/oscore/*.conf (libcoap's coap-oscore-conf(5) format):
#   1. our coap-client -E <-> libcoap's coap-server -E: GET, POST with a payload, Observe, a
#      6 KB block-wise PUT then GET, the seq_file carried across runs (and between our client
#      and libcoap's); a wrong Master Secret (4.00 Decryption failed) and an unknown Sender ID
#      (4.01 Security context not found)
#   2. libcoap's coap-client -E <-> our coap-server -E: the same, and a replay (a client
#      starting its Sender Sequence Number again at 0: 4.01 Replay detected)
#   3. through our forward proxy: Outer Block1 and Outer Block2 blocks of protected messages
#   4. Appendix B.2 (ID Context re-derivation, rfc8613_b_2 true: oscore/*-b2.conf) both ways,
#      over coap and coap+tcp, each renewal seen in libcoap's own log; and libcoap's renewing
#      client refused (4.01 Security context not found) by our server without rfc8613_b_2
# What libcoap 4.3.5 does and why these checks expect what they do: docs/oscore.md.
# Prints "ok: ..." or "FAIL: ..." per check and "oscore interop: N passed, M failed"; exits 1
# when any check failed. Prints "skipped: ..." and exits 77 (tools/test counts nothing) when
# ../shared/peers is absent or our tools have no -E yet. Every server it starts is killed on
# exit. COAP_EXAMPLES_BIN=dir uses dir/coap-client and dir/coap-server.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"

skip() {
  echo "skipped: $*"
  exit 77
}

peers=$repo/../shared/peers
[[ -x $peers/build-libcoap ]] || skip "$peers/build-libcoap is absent (libcoap 4.3.5 with OSCORE)"
if ! lc_bin=$("$peers/build-libcoap" 2>/tmp/coap-oscore-build-libcoap.$$.log); then
  tail -n 20 /tmp/coap-oscore-build-libcoap.$$.log
  rm -f /tmp/coap-oscore-build-libcoap.$$.log
  echo "FAIL: $peers/build-libcoap"
  echo "oscore interop: 0 passed, 1 failed"
  exit 1
fi
rm -f /tmp/coap-oscore-build-libcoap.$$.log
lc_client=$lc_bin/coap-client
lc_server=$lc_bin/coap-server

# shellcheck source=tools/test.d/interop_common.bash
source tools/test.d/interop_common.bash
stage_begin oscore "oscore interop" "$lc_client" "$lc_server"

# Our tools take -E once the session integration has landed; until then there is nothing of
# ours to test (libcoap against itself says nothing about coap-cpp).
has_E() {
  local help
  help=$("$1" --help 2>&1)  # not piped into grep -q: a closed pipe would fail the program
  grep -qE '^[[:space:]]+-E( |$)' <<<"$help"
}
client_has_E=0
server_has_E=0
has_E "$our_client" && client_has_E=1
has_E "$our_server" && server_has_E=1
if [[ $client_has_E -eq 0 && $server_has_E -eq 0 ]]; then
  skip "coap-client has no -E yet (nor coap-server)"
fi

conf=tools/test.d/oscore

check_timeout=20

# check_lines NAME MIN COMMAND...: COMMAND prints at least MIN lines that look like libcoap's
# /time ("Dec 02 14:56:21").
check_lines() {
  local name=$1 min=$2
  shift 2
  local n
  n=$(timeout 20 "$@" 2>/dev/null | grep -cE '^[A-Z][a-z]{2} [0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}')
  if [[ $n -ge $min ]]; then ok "$name ($n)"; else fail "$name" "$n lines of /time, wanted $min"; fi
}

# check_seq NAME FILE BEFORE: the seq_file holds one decimal number above BEFORE.
check_seq() {
  local name=$1 file=$2 before=$3 now
  now=$(tr -d ' \n' <"$file" 2>/dev/null)
  if [[ $now =~ ^[0-9]+$ && $now -gt $before ]]; then ok "$name ($before -> $now)"; else
    fail "$name" "seq_file holds '${now}', wanted a number above $before"; fi
}

seq_value() { if [[ -f $1 ]]; then tr -d ' \n' <"$1"; else echo 0; fi; }

# check_success NAME COMMAND...: COMMAND exits 0 and prints no 4.xx or 5.xx response.
check_success() {
  local name=$1
  shift
  local out rc
  out=$(timeout 20 "$@" 2>&1)
  rc=$?
  if [[ $rc -eq 0 ]] && ! grep -qE '^[45]\.[0-9]{2}' <<<"$out"; then ok "$name"; else
    fail "$name" "exit status $rc: ${out:0:300}"; fi
}

# A 6 KB body (printable, so that a client printing it can be compared).
head -c 4608 /dev/urandom | base64 -w0 | head -c 6144 >"$work/body6k"

# ---- 1. Our client against libcoap's coap-server -E.
# -d 10: PUT/POST create resources (libcoap's hnd_put_post_unknown); /example_data takes PUT.
our_client_vs_libcoap() {
  local port
  port=$(free_port)
  start libcoap-oscore-server "$port" "$lc_server" -A 127.0.0.1 -p "$port" -d 10 \
    -E "$conf/server.conf,$work/libcoap-server.seq" || return
  local seq=$work/our-client.seq
  local scheme base before
  for scheme in coap coap+tcp; do
    base="$scheme://127.0.0.1:$port"
    before=$(seq_value "$seq")
    check_lines "our client -E GET $scheme /time (libcoap server)" 1 \
      "$our_client" -B 10 -E "$conf/client.conf,$seq" "$base/time"
    check_seq "our client's seq_file advanced after GET over $scheme" "$seq" "${before:-0}"
    # A second run continues the numbering, so the server does not see a replay.
    check_lines "our client -E GET $scheme /time again, same seq_file" 1 \
      "$our_client" -B 10 -E "$conf/client.conf,$seq" "$base/time"
    check_success "our client -E POST with payload over $scheme (libcoap creates the resource)" \
      "$our_client" -B 10 -E "$conf/client.conf,$seq" -m post -e "posted over $scheme" "$base/posted-${scheme/+/-}"
    check "our client -E GET $scheme what it POSTed" "posted over $scheme" \
      "$our_client" -B 10 -E "$conf/client.conf,$seq" "$base/posted-${scheme/+/-}"
    check_lines "our client -E observes $scheme /time for 3 s" 2 \
      "$our_client" -B 10 -E "$conf/client.conf,$seq" -s 3 -w "$base/time"
    rm -f "$work/got6k"
    timeout 30 "$our_client" -B 20 -E "$conf/client.conf,$seq" -m put -b 1024 -f "$work/body6k" \
      "$base/example_data" >"$work/put.out" 2>&1
    timeout 30 "$our_client" -B 20 -E "$conf/client.conf,$seq" -b 1024 -o "$work/got6k" \
      "$base/example_data" >"$work/get.out" 2>&1
    if cmp -s "$work/body6k" "$work/got6k"; then ok "our client -E 6 KB PUT then GET over $scheme (libcoap server)"
    else fail "our client -E 6 KB PUT then GET over $scheme (libcoap server)" "$(head -c 300 "$work/put.out" "$work/get.out")"; fi
    # Wrong Master Secret: a fresh, high Partial IV, or the replay check (made first) answers.
    echo 1000000 >"$work/wrong.seq"
    check "our client with a wrong Master Secret over $scheme: 4.00 Decryption failed" "4.00 Decryption failed" \
      "$our_client" -B 10 -E "$conf/wrong-secret.conf,$work/wrong.seq" "$base/time"
    check "our client with an unknown Sender ID over $scheme: 4.01 Security context not found" \
      "4.01 Security context not found" "$our_client" -B 10 -E "$conf/unknown-sender.conf" "$base/time"
  done
  # The seq_file is in libcoap's format: each client continues the other's numbering (a reused
  # number would be answered 4.01 Replay detected).
  base="coap://127.0.0.1:$port"
  check_lines "libcoap's client continues our client's seq_file" 1 \
    "$lc_client" -B 10 -E "$conf/client.conf,$seq" "$base/time"
  check_lines "our client continues the seq_file libcoap's client wrote" 1 \
    "$our_client" -B 10 -E "$conf/client.conf,$seq" "$base/time"
}

# ---- 2. libcoap's coap-client -E against our coap-server -E.
libcoap_client_vs_ours() {
  local port
  port=$(free_port)
  start our-oscore-server "$port" "$our_server" -A 127.0.0.1 -p "$port" \
    -E "$conf/server.conf,$work/our-server.seq" || return
  local seq=$work/libcoap-client.seq
  local scheme base before
  for scheme in coap coap+tcp; do
    base="$scheme://127.0.0.1:$port"
    before=$(seq_value "$seq")
    check_lines "libcoap client -E GET $scheme /time (our server)" 1 \
      "$lc_client" -B 10 -E "$conf/client.conf,$seq" "$base/time"
    check_seq "libcoap client's seq_file advanced over $scheme" "$seq" "${before:-0}"
    check "libcoap client -E POST /echo with payload over $scheme" "echoed over $scheme" \
      "$lc_client" -B 10 -E "$conf/client.conf,$seq" -m post -e "echoed over $scheme" "$base/echo"
    check_lines "libcoap client -E observes $scheme /time for 3 s" 2 \
      "$lc_client" -B 10 -E "$conf/client.conf,$seq" -s 3 -w "$base/time"
    rm -f "$work/got6k"
    timeout 30 "$lc_client" -B 20 -E "$conf/client.conf,$seq" -m put -b 1024 -f "$work/body6k" \
      "$base/big-${scheme/+/-}" >"$work/put.out" 2>&1
    timeout 30 "$lc_client" -B 20 -E "$conf/client.conf,$seq" -b 1024 -o "$work/got6k" \
      "$base/big-${scheme/+/-}" >"$work/get.out" 2>&1
    if cmp -s "$work/body6k" "$work/got6k"; then ok "libcoap client -E 6 KB PUT then GET over $scheme (our server)"
    else fail "libcoap client -E 6 KB PUT then GET over $scheme (our server)" "$(head -c 300 "$work/put.out" "$work/get.out")"; fi
    echo 1000000 >"$work/wrong.seq"
    check "libcoap client with a wrong Master Secret over $scheme: 4.00 Decryption failed" \
      "4.00 Decryption failed" "$lc_client" -B 10 -E "$conf/wrong-secret.conf,$work/wrong.seq" "$base/time"
    check "libcoap client with an unknown Sender ID over $scheme: 4.01 Security context not found" \
      "4.01 Security context not found" "$lc_client" -B 10 -E "$conf/unknown-sender.conf" "$base/time"
    # No seq_file: libcoap starts at 0 again, which the server has seen.
    check "libcoap client replaying Partial IV 0 over $scheme: 4.01 Replay detected" "4.01 Replay detected" \
      "$lc_client" -B 10 -E "$conf/client.conf" "$base/time"
  done
}

# ---- 3. Through our forward proxy (plain coap-server -P), which cuts what does not fit the
# next hop into blocks of the protected message: Outer Block options (RFC 8613 section
# 4.1.3.4.2), put together by the endpoint before it verifies. A coap+tcp client's 3000-byte
# PUT goes on to a coap server as Outer Block1 blocks; a coap client's GET of it comes back
# as Outer Block2 blocks (the proxy keeps its answer and serves them).
# proxied_get NAME CLIENT_SCHEME ORIGIN_SCHEME: our client GETs /outer through $proxy from $port
# and gets body3k (variables of through_our_proxy).
proxied_get() {
  local name=$1
  rm -f "$work/outer-got"
  if timeout 30 "$our_client" -B 20 -E "$conf/client.conf,$seq" -P "$2://127.0.0.1:$proxy" \
      -o "$work/outer-got" "$3://127.0.0.1:$port/outer" >"$work/outer-get.out" 2>&1 &&
     cmp -s "$work/body3k" "$work/outer-got"; then ok "$name"
  else fail "$name" "$(head -c 300 "$work/outer-get.out")"; fi
}

through_our_proxy() {
  local port proxy seq=$work/proxy-client.seq
  port=$(free_port)
  start our-oscore-server-2 "$port" "$our_server" -A 127.0.0.1 -p "$port" \
    -E "$conf/server.conf,$work/our-server-2.seq" || return
  proxy=$(free_port)
  start our-proxy "$proxy" "$our_server" -A 127.0.0.1 -p "$proxy" -P || return
  head -c 2250 /dev/urandom | base64 -w0 | head -c 3000 >"$work/body3k"
  local name="our client (coap+tcp) -> our proxy -> our server (coap): 3000-byte PUT in Outer Block1 blocks"
  if timeout 30 "$our_client" -B 20 -E "$conf/client.conf,$seq" -P "coap+tcp://127.0.0.1:$proxy" -m put \
      -f "$work/body3k" "coap://127.0.0.1:$port/outer" >"$work/outer-put.out" 2>&1 &&
     timeout 20 "$our_client" -B 10 -E "$conf/client.conf,$seq" -o "$work/outer-direct" \
      "coap+tcp://127.0.0.1:$port/outer" >"$work/outer-direct.out" 2>&1 &&
     cmp -s "$work/body3k" "$work/outer-direct"; then ok "$name"
  else fail "$name" "$(head -c 300 "$work/outer-put.out" "$work/outer-direct.out")"; fi
  # A coap client's GET comes back in Outer Block2 blocks; to a coap+tcp client the proxy
  # sends the protected answer whole (RFC 8323 carries it); from a coap+tcp origin the
  # proxy's later blocks are over three times the request's size, so it asks for an Echo
  # first (RFC 9175 section 2.4), which the client repeats as an outer option.
  proxied_get "our client (coap) -> our proxy -> our server (coap): 3000-byte GET in Outer Block2 blocks" coap coap
  proxied_get "our client (coap+tcp) -> our proxy -> our server (coap): 3000-byte GET, answered whole" coap+tcp coap
  proxied_get "our client (coap) -> our proxy -> our server (coap+tcp): 3000-byte GET in Outer Block2 blocks, with the proxy's Echo" \
    coap coap+tcp
}

# ---- 4. Appendix B.2. libcoap 4.3.5's client renews on every run (coap_oscore_initiate puts
# a random 8-byte ID1 in place of the conf's id_context): its request under ID1 carries
# 'kid context' CBOR-wrapped, the server answers a protected 4.01 with R2, the request goes
# again under R2||R3. Its server renews whenever a known 'kid' comes with an unknown ID
# Context; neither side starts a renewal otherwise (docs/oscore.md, "Appendix B.2").
b2_libcoap_client_vs_ours() {
  local port seq=$work/b2-libcoap-client.seq scheme base out name
  port=$(free_port)
  start our-oscore-server-b2 "$port" "$our_server" -A 127.0.0.1 -p "$port" -E "$conf/server-b2.conf" || return
  for scheme in coap coap+tcp; do
    base="$scheme://127.0.0.1:$port"
    name="libcoap client (rfc8613_b_2) renews its ID Context with our server over $scheme, then GETs /time"
    out=$(timeout 20 "$lc_client" -B 10 -v 8 -E "$conf/client-b2.conf,$seq" "$base/time" 2>&1)
    if grep -q "Appendix B.2 client step 3 (R2 || ID1)" <<<"$out" && grep -q "Appendix B.2 client finished" <<<"$out" &&
       grep -A1 "PDU presented to app" <<<"$out" | grep -q "c:2.05"; then ok "$name"
    else fail "$name" "$(grep -E 'B\.2|WARN|CRIT|c:[245]\.' <<<"$out" | head -c 400)"; fi
    check "libcoap client (rfc8613_b_2) POST /echo over $scheme (our server)" "renewed over $scheme" \
      "$lc_client" -B 10 -E "$conf/client-b2.conf,$seq" -m post -e "renewed over $scheme" "$base/echo"
  done
  # Our server without rfc8613_b_2 knows no context for ID1: section 8.2's 4.01.
  port=$(free_port)
  start our-oscore-server-no-b2 "$port" "$our_server" -A 127.0.0.1 -p "$port" -E "$conf/server.conf" || return
  check "libcoap client (rfc8613_b_2) against our server without it: 4.01 Security context not found" \
    "4.01 Security context not found" "$lc_client" -B 10 -E "$conf/client-b2.conf,$seq" "coap://127.0.0.1:$port/time"
}

b2_our_client_vs_libcoap() {
  local port seq=$work/b2-our-client.seq scheme base before after log
  port=$(free_port)
  log=$work/libcoap-oscore-server-b2.log
  start libcoap-oscore-server-b2 "$port" "$lc_server" -A 127.0.0.1 -p "$port" -d 10 -v 8 \
    -E "$conf/server-b2.conf,$work/libcoap-server-b2.seq" || return
  for scheme in coap coap+tcp; do
    base="$scheme://127.0.0.1:$port"
    before=$(grep -c "Appendix B.2 server step 4 (R2 || R3)" "$log")
    # libcoap's server also asks the renewed context for an Echo (Appendix B.1.2): three
    # round trips under the one request.
    check_lines "our client (rfc8613_b_2) GETs $scheme /time from libcoap's server" 1 \
      "$our_client" -B 10 -E "$conf/client-b2.conf,$seq" "$base/time"
    after=$(grep -c "Appendix B.2 server step 4 (R2 || R3)" "$log")
    if [[ $after -gt $before ]]; then ok "libcoap's server took our client's R2||R3 over $scheme (its step 4)"
    else fail "libcoap's server took our client's R2||R3 over $scheme (its step 4)" \
      "$(grep -E 'B\.2|WARN|CRIT' "$log" | tail -n 5)"; fi
    check_success "our client (rfc8613_b_2) POST with payload over $scheme (libcoap server)" \
      "$our_client" -B 10 -E "$conf/client-b2.conf,$seq" -m post -e "b2 over $scheme" "$base/b2-${scheme/+/-}"
    check "our client (rfc8613_b_2) GET $scheme what it POSTed" "b2 over $scheme" \
      "$our_client" -B 10 -E "$conf/client-b2.conf,$seq" "$base/b2-${scheme/+/-}"
  done
}

if [[ $client_has_E -eq 1 ]]; then our_client_vs_libcoap; else echo "skipped: coap-client has no -E yet"; fi
if [[ $server_has_E -eq 1 ]]; then libcoap_client_vs_ours; else echo "skipped: coap-server has no -E yet"; fi
if [[ $client_has_E -eq 1 && $server_has_E -eq 1 ]]; then through_our_proxy; fi
if [[ $server_has_E -eq 1 ]]; then b2_libcoap_client_vs_ours; fi
if [[ $client_has_E -eq 1 ]]; then b2_our_client_vs_libcoap; fi

echo "oscore interop: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
