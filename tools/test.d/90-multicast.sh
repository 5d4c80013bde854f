#!/usr/bin/env bash
# RFC 7252 section 8 and RFC 7390 (group communication) between coap-cpp's tools and libcoap
# 4.3.1's, over multicast on loopback in a network namespace this stage makes and removes
# (docs/multicast.md). In the group 224.0.1.187, port 5683: two libcoap coap-server -g and our
# coap-server -g (its unicast address 127.0.0.2, so that its answers can be told apart):
#   1. our coap-client gathers the answers of all three, each with its source
#   2. libcoap's coap-client gets ours too
#   3. a CON request to the group gets nothing back: no ACK storm, no RST (section 8.1)
#   4. a body larger than a block: block 0 by multicast, the rest unicast from the responder,
#      with libcoap's client and with ours
#   5. a resource that opts out of multicast (/counter): nothing by multicast, served unicast
#   6. errors stay home: a 4.04 is not sent to a group request (section 8.2, RFC 7967)
#   7. IPv6: our second coap-server joins ff02::fd and ff05::fd on one end of a veth pair (IPv6
#      multicast does not loop back on lo); our client (ff02::fd) and libcoap's (ff05::fd) get it
# Needs root (ip netns); without it prints "skipped: ..." and counts nothing. Prints "ok: ..."
# or "FAIL: ..." per check and "multicast interop: N passed, M failed"; exits 1 when any failed.
# Servers answer after a leisure of up to 5 s, so the checks wait 6 s, side by side.
# COAP_EXAMPLES_BIN=dir uses dir/coap-client and dir/coap-server.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"

lc_client=coap-client-notls
lc_server=coap-server-notls
group=224.0.1.187
port=5683
wait_s=6

if [[ ${1:-} != --inside ]]; then
  if [[ $(id -u) != 0 ]] || ! command -v ip >/dev/null; then
    echo "skipped: multicast interop needs root and ip(8) for a network namespace"
    echo "multicast interop: 0 passed, 0 failed"
    exit 0
  fi
  # shellcheck source=tools/test.d/interop_common.bash
  source tools/test.d/interop_common.bash
  stage_begin multicast "multicast interop" "$lc_client" "$lc_server"  # builds the tools
  ns=coap-mcast-$$
  trap 'ip netns del "$ns" 2>/dev/null; stage_cleanup' EXIT
  in_ns() { ip netns exec "$ns" "$@"; }
  if ! ip netns add "$ns" || ! in_ns ip link set lo up || ! in_ns ip route add 224.0.0.0/4 dev lo src 127.0.0.1 ||
    ! in_ns sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 ||
    ! in_ns ip link add mc0 type veth peer name mc1 || ! in_ns ip link set mc0 up || ! in_ns ip link set mc1 up; then
    echo "FAIL: cannot set up network namespace $ns"
    echo "multicast interop: 0 passed, 1 failed"
    exit 1
  fi
  ip netns exec "$ns" env COAP_EXAMPLES_BIN="$(cd "$(dirname "$our_client")" && pwd)" "$0" --inside
  exit $?
fi

# ---- inside the namespace ----
# shellcheck source=tools/test.d/interop_common.bash
source tools/test.d/interop_common.bash
stage_begin multicast "multicast interop" "$lc_client" "$lc_server"

"$lc_server" -g "$group" -p "$port" >"$work/libcoap1.log" 2>&1 &
pids+=($!)
"$lc_server" -g "$group" -p "$port" >"$work/libcoap2.log" 2>&1 &
pids+=($!)
"$our_server" -A 127.0.0.2 -p "$port" -g "$group" -v 7 >"$work/ours.log" 2>&1 &
pids+=($!)
"$our_server" -A :: -p "$port" -g ff02::fd -g ff05::fd -G mc0 -v 7 >"$work/ours6.log" 2>&1 &
pids+=($!)
# Ready when every server has its UDP socket on the port, ours have joined their groups, and
# the unicast addresses answer with the right server: libcoap's servers listen on the wildcard
# address, so until ours is bound they answer for 127.0.0.2 too (a GET there proves nothing
# unless the answer is ours).
all_bound() {
  local listing pid
  listing=$(ss -uHlnp "sport = :$port" 2>/dev/null)
  for pid in "${pids[@]}"; do grep -q "pid=$pid," <<<"$listing" || return 1; done
}
ready=
for _ in $(seq 100); do
  if all_bound && grep -q "joined group $group" "$work/ours.log" && grep -q "joined group ff05::fd" "$work/ours6.log" &&
    timeout 2 "$lc_client" -B 1 "coap://127.0.0.2:$port/" 2>/dev/null | grep -q coap-cpp &&
    timeout 2 "$lc_client" -B 1 "coap://127.0.0.1:$port/" 2>/dev/null | grep -q libcoap; then
    ready=1
    break
  fi
  sleep 0.1
done
[[ -n $ready ]] || fail "the four servers are up, ours in their groups" "$(cat "$work/ours.log" "$work/ours6.log" | head -n 8)"

# A body of three blocks on our server, for check 4, read back unicast.
head -c 3000 /dev/zero | tr '\0' 'b' >"$work/big"
timeout 10 "$lc_client" -m put -f "$work/big" "coap://127.0.0.2:$port/big" >"$work/put.out" 2>&1
if [[ $(timeout 10 "$lc_client" "coap://127.0.0.2:$port/big" 2>&1 | tr -d '\n' | grep -o b | wc -l) != 3000 ]]; then
  fail "unicast PUT of /big to our server (check 4 needs it)" "$(head -c 300 "$work/put.out")"
fi

# Everything that waits for the leisure runs side by side.
run() {  # run NAME COMMAND...: stdout+stderr to $work/NAME.out, exit status to $work/NAME.rc
  local name=$1
  shift
  { timeout 20 "$@" >"$work/$name.out" 2>&1; echo $? >"$work/$name.rc"; } &
}
run gather "$our_client" -B "$wait_s" "coap://$group/"
run libcoap_client "$lc_client" -N -B "$wait_s" "coap://$group/"
run big_libcoap "$lc_client" -N -B "$wait_s" "coap://$group/big"
run big_ours "$our_client" -B "$wait_s" "coap://$group/big"
run opt_out "$our_client" -B "$wait_s" "coap://$group/counter"
run not_found "$our_client" -B "$wait_s" "coap://$group/nothing-here"
run v6_ours "$our_client" -B "$wait_s" "coap://[ff02::fd]/"
run v6_libcoap "$lc_client" -N -B "$wait_s" "coap://[ff05::fd]/"
# Section 8.1: ten CON requests to the group; count every datagram that comes back.
cat >"$work/con.py" <<'PY'
import socket, struct, sys, time
group, port, wait = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
for mid in range(10):
    # CON GET / with a 2-byte token
    s.sendto(struct.pack("!BBHH", 0x42, 0x01, 0x1000 + mid, 0xbeef), (group, port))
s.settimeout(0.2)
got, end = 0, time.time() + wait
while time.time() < end:
    try:
        s.recvfrom(2048)
        got += 1
    except socket.timeout:
        pass
print("sent 10, datagrams back:", got)
PY
run con python3 "$work/con.py" "$group" "$port" "$wait_s"
wait_runs() { for _ in $(seq 200); do [[ $(ls "$work"/*.rc 2>/dev/null | wc -l) -ge 9 ]] && return; sleep 0.1; done; }
wait_runs
out() { cat "$work/$1.out"; }

# 1. Three answers, each after a line naming its source.
ours_lines=$(out gather | grep -c "^127.0.0.2:$port 2.05 Content")
libcoap_lines=$(out gather | grep -c "^127.0.0.1:$port 2.05 Content")
if [[ $ours_lines == 1 && $libcoap_lines == 2 ]] && out gather | grep -q "coap-cpp" && out gather | grep -q "libcoap"; then
  ok "our coap-client gathers the answers of two libcoap servers and ours"
else
  fail "our coap-client gathers the answers of two libcoap servers and ours" "$(out gather | head -n 12)"
fi
# 2. libcoap's client prints every answer's payload.
if out libcoap_client | grep -q "coap-cpp" && [[ $(out libcoap_client | grep -c "made with libcoap") == 2 ]]; then
  ok "libcoap's coap-client gets our answer with the two others"
else
  fail "libcoap's coap-client gets our answer with the two others" "$(out libcoap_client | head -n 12)"
fi
# 3. Nothing back for a CON to the group.
if out con | grep -q "^sent 10, datagrams back: 0$"; then
  ok "a CON request to the group gets nothing back (no ACK, no RST)"
else
  fail "a CON request to the group gets nothing back (no ACK, no RST)" "$(out con)"
fi
# 4. The whole body: block 0 by multicast, the rest unicast.
if [[ $(out big_libcoap | tr -d '\n' | grep -o b | wc -l) == 3000 ]]; then
  ok "block 0 by multicast, the rest unicast from us (libcoap's client)"
else
  fail "block 0 by multicast, the rest unicast from us (libcoap's client)" "$(out big_libcoap | head -c 300)"
fi
if out big_ours | grep -q "^127.0.0.2:$port 2.05 Content" && [[ $(out big_ours | grep -v Content | tr -d '\n' | grep -o b | wc -l) == 3000 ]]; then
  ok "block 0 by multicast, the rest unicast (our client)"
else
  fail "block 0 by multicast, the rest unicast (our client)" "$(out big_ours | head -c 300)"
fi
# 5. /counter opts out; unicast it answers.
if [[ $(cat "$work/opt_out.rc") != 0 ]] && out opt_out | grep -q "no answer within" &&
  ! grep -q "GET /counter" "$work/ours.log" &&
  timeout 5 "$lc_client" -B 2 "coap://127.0.0.2:$port/counter" 2>&1 | grep -qx "[0-9]*"; then
  ok "a resource that opts out is not served by multicast, and is unicast"
else
  fail "a resource that opts out is not served by multicast, and is unicast" "$(out opt_out)"
fi
# 6. 4.04 stays home, from libcoap's servers and ours.
if out not_found | grep -q "no answer within" && ! out not_found | grep -q "4.04"; then
  ok "no 4.04 is sent to a group request"
else
  fail "no 4.04 is sent to a group request" "$(out not_found)"
fi

# 7. IPv6 groups: our server's answer, from its link-local address on the veth.
if out v6_ours | grep -q "^\[fe80::.*\]:$port 2.05 Content" && out v6_ours | grep -q "coap-cpp"; then
  ok "IPv6: our coap-client gets our server's answer to ff02::fd"
else
  fail "IPv6: our coap-client gets our server's answer to ff02::fd" "$(out v6_ours | head -n 8)"
fi
if out v6_libcoap | grep -q "coap-cpp"; then
  ok "IPv6: libcoap's coap-client gets our server's answer to ff05::fd"
else
  fail "IPv6: libcoap's coap-client gets our server's answer to ff05::fd" "$(out v6_libcoap | head -n 8)"
fi

echo "multicast interop: $passed passed, $failed failed"
[[ $failed == 0 ]]
