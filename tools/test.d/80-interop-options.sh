#!/usr/bin/env bash
# RFC 7967 (No-Response), RFC 8132 (FETCH, PATCH, iPATCH), RFC 9175 (Echo) and RFC 8516 (4.29)
# between coap-cpp's tools and libcoap 4.3.1's, on loopback (docs/options.md):
#   1. libcoap's coap-client -> our coap-server: -O 258,... (NON and CON), -m fetch|ipatch|patch,
#      the Echo challenge of the amplification limit repeated by libcoap, 4.29 past --rate
#   2. our coap-client -> libcoap's coap-server: -O 258,0x1a completes at once, -O 258,0x02,
#      -m fetch, -m ipatch (libcoap has no iPATCH handler: 4.05)
#   3. our coap-client -> our coap-server: the Echo repetition, 4.29
# libcoap 4.3.1's coap-server issues no Echo and no 4.29: those go one way only.
# Prints "ok: ..." or "FAIL: ..." per check and "options interop: N passed, M failed"; exits 1
# when any check failed. Every server it starts is killed on exit.
# COAP_EXAMPLES_BIN=dir uses dir/coap-client and dir/coap-server.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"

lc_client=coap-client-notls
lc_server=coap-server-notls
# shellcheck source=tools/test.d/interop_common.bash
source tools/test.d/interop_common.bash
stage_begin options "options interop" "$lc_client" "$lc_server"

# check_empty NAME COMMAND...: COMMAND prints nothing and exits 0.
check_empty() {
  local name=$1
  shift
  local out status
  out=$(timeout 15 "$@" 2>&1)
  status=$?
  if [[ $status -eq 0 && -z $out ]]; then ok "$name"; else fail "$name" "exit $status, got: ${out:0:300}"; fi
}

our_port=$(free_port)
lc_port=$(free_port)
rate_port=$(free_port)
start our-server "$our_port" "$our_server" -A 127.0.0.1 -p "$our_port" -v 7 || exit 1
start libcoap-server "$lc_port" "$lc_server" -A 127.0.0.1 -p "$lc_port" || exit 1
# One request per second per peer, in bursts of one; no Echo challenge (one request each).
start our-rate-server "$rate_port" "$our_server" -A 127.0.0.1 -p "$rate_port" --rate 1 --amplification 0 || exit 1
ours=coap://127.0.0.1:$our_port
theirs=coap://127.0.0.1:$lc_port

# 1. libcoap's client -> our server.
requests_before=$(grep -c "GET /time" "$work/our-server.log")
check_empty "No-Response 2.xx on a NON (libcoap -N -O 258,0x02): no answer" \
  "$lc_client" -N -B 1 -O 258,0x02 "$ours/time"
sleep 0.1
if (($(grep -c "GET /time" "$work/our-server.log") > requests_before)); then
  ok "No-Response: our handler ran all the same"
else
  fail "No-Response: our handler ran all the same" "$(tail -n 3 "$work/our-server.log")"
fi
check "No-Response 2.xx: a 4.04 still answers" "4.04" "$lc_client" -N -B 2 -O 258,0x02 "$ours/missing"
check "No-Response 2.xx on a CON: an empty ACK" "t:ACK c:0.00" "$lc_client" -v 7 -B 1 -O 258,0x02 "$ours/time"
check "No-Response 4.xx (-O 258,0x08): the 2.05 comes" ":" "$lc_client" -B 2 -O 258,0x08 "$ours/time"
check "FETCH /time with the body ticks (libcoap -m fetch)" "17" "$lc_client" -m fetch -e ticks -B 2 "$ours/time"
printf 'a=1\nb=2\nc=3\n' >"$work/doc"
timeout 5 "$lc_client" -m put -f "$work/doc" -B 2 "$ours/doc" >/dev/null 2>&1
check "FETCH a created resource selects its lines" "b=2" "$lc_client" -m fetch -e b -B 2 "$ours/doc"
check_empty "iPATCH b=5 (libcoap -m ipatch)" "$lc_client" -m ipatch -e b=5 -B 2 "$ours/doc"
check "iPATCH took effect" "b=5" "$lc_client" -B 2 "$ours/doc"
check "iPATCH with a line that is not key=value: 4.22" "4.22" "$lc_client" -m ipatch -e zzz -B 2 "$ours/doc"
check_empty "PATCH d=4 (libcoap -m patch)" "$lc_client" -m patch -e d=4 -B 2 "$ours/doc"
check "PATCH took effect" "d=4" "$lc_client" -B 2 "$ours/doc"
out=$(timeout 10 "$lc_client" -v 7 -B 3 "$ours/.well-known/core" 2>&1)
if [[ $out == *"c:4.01"*"Echo:"*"Echo:"*"c:2.05"*"</time>"* ]]; then
  ok "Echo: our 4.01 challenge, libcoap repeats with the Echo and gets the answer"
else
  fail "Echo: our 4.01 challenge, libcoap repeats with the Echo and gets the answer" "got: ${out:0:400}"
fi
# Block-wise in 16-byte blocks: the second block request is over the rate.
check "4.29 past our --rate (libcoap's second block request)" "4.29" \
  "$lc_client" -b 16 -B 3 "coap://127.0.0.1:$rate_port/.well-known/core"

# 2. Our client -> libcoap's server.
start_time=$(date +%s%N)
check_empty "No-Response to everything on a NON (our -N -O 258,0x1a): done at once" \
  "$our_client" -N -O 258,0x1a -B 5 "$theirs/time"
elapsed_ms=$((($(date +%s%N) - start_time) / 1000000))
if ((elapsed_ms < 1000)); then ok "... within 1 s ($elapsed_ms ms)"; else fail "... within 1 s" "$elapsed_ms ms"; fi
check "No-Response 2.xx: libcoap's 4.04 still answers" "4.04" "$our_client" -O 258,0x02 -B 2 "$theirs/missing"
check "FETCH libcoap's /time with the body ticks (our -m fetch)" "17" "$our_client" -m fetch -e ticks -B 2 "$theirs/time"
check "iPATCH to libcoap's /time: dispatched, no handler (4.05)" "4.05" "$our_client" -m ipatch -e x=1 -B 2 "$theirs/time"

# 3. Our client -> our server.
check "Echo: our client repeats with the Echo (else it would print 4.01)" "</time>" "$our_client" -B 3 "$ours/.well-known/core"
check "4.29: our client gets it past --rate" "4.29" "$our_client" -b 16 -B 3 "coap://127.0.0.1:$rate_port/.well-known/core"

echo "options interop: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
