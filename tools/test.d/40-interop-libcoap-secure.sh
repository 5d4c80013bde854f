#!/usr/bin/env bash
# CoAP over DTLS (coaps://) and TLS (coaps+tcp://) between coap-cpp's example tools and
# libcoap 4.3.1's coap-{client,server}-{openssl,gnutls}, on 127.0.0.1, with pre-shared keys
# and with certificates (the test PKI of tests/support/make_certs.sh):
#   1. our coap-server (PSK) <- libcoap's coap-client-openssl and coap-client-gnutls
#   2. libcoap's coap-server-openssl and coap-server-gnutls (PSK) <- our coap-client,
#      which names the negotiated cipher suite at -v 7
#   3. the same two directions with certificates (client certificates required: -C ca.crt)
#   4. failures: wrong keys, untrusted and expired server certificates, a server certificate
#      that does not name the URI's host, a missing client
#      certificate (and that -n on our server lets that client in)
#   5. our coap-client <- our coap-server: coaps and coaps+tcp, PSK and certificates
#   6. private keys as other openssl commands write them, given to our tools with -j: SEC 1
#      (`openssl ecparam -genkey`, PEM and DER) and PKCS #1 RSA (PEM and DER) on our server,
#      reached by libcoap's clients and ours; and keys our tools refuse, with the file and the
#      reason on stderr
# Every check prints "ok: ..." or "FAIL: ..."; the script exits 1 when any check failed.
# Every server it starts is killed on exit.
#
# libcoap's coap-client exits 0 even when the handshake fails and logs to stdout
# (docs/notes/libcoap-secure-ground-truth.md), so its checks compare stdout only: exactly the
# payload on success, and no payload (plus the alert OpenSSL logs) on failure. Our coap-client
# is checked on exit status, stdout and stderr.
#
# The tools are built with Bazel (`bazel build //examples:coap-client //examples:coap-server`).
# COAP_EXAMPLES_BIN=dir uses dir/coap-client and dir/coap-server instead, without Bazel.
# Ports: a block of 100 from 23000 up (23000-23099, else 23100-23199, ...), the first one whose
# ports are all free; COAP_SECURE_INTEROP_PORT=N starts the search at N instead.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo" || exit 1

lc_client_openssl=coap-client-openssl
lc_client_gnutls=coap-client-gnutls
lc_server_openssl=coap-server-openssl
lc_server_gnutls=coap-server-gnutls
for tool in "$lc_client_openssl" "$lc_client_gnutls" "$lc_server_openssl" "$lc_server_gnutls" \
            timeout openssl; do
  if ! command -v "$tool" >/dev/null; then
    echo "FAIL: $tool is not on PATH (libcoap 4.3.1's tools: Debian's libcoap3-bin; openssl for the test PKI)"
    exit 1
  fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/coap-interop-secure.XXXXXX")
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
# Copies, so that a concurrent Bazel build replacing bazel-bin cannot pull them away mid-run.
mkdir -p "$work/bin"
for tool in coap-client coap-server; do
  if [[ ! -x $bin/$tool ]] || ! cp "$bin/$tool" "$work/bin/$tool"; then
    echo "FAIL: $bin/$tool was not built"
    exit 1
  fi
done
our_client=$work/bin/coap-client
our_server=$work/bin/coap-server

certs=$work/certs
if ! timeout 60 bash tests/support/make_certs.sh "$certs" >"$work/certs.log" 2>&1; then
  cat "$work/certs.log"
  echo "FAIL: tests/support/make_certs.sh"
  exit 1
fi

passed=0
failed=0
last_command=
ok() { echo "ok: $1"; passed=$((passed + 1)); }
fail() { echo "FAIL: $1"; failed=$((failed + 1)); }

# libcoap's clients wait at most 5 s (-B), ours 10 s; every command a little longer (timeout).
lc_wait=5
our_wait=10
run() {
  local limit=$1
  shift
  last_command="$*"
  timeout "$limit" "$@" >"$work/out" 2>"$work/err"
  echo $? >"$work/rc"
}

report() {
  echo "    command: $last_command"
  echo "    exit status: $(cat "$work/rc") (want $1)"
  echo "    stdout: $(head -c 600 "$work/out")"
  echo "      want: $2"
  echo "    stderr: $(head -c 600 "$work/err")"
  echo "      want: $3"
}

# check NAME RC STDOUT STDERR -- COMMAND...: runs our COMMAND and compares all three exactly.
check() {
  local name=$1 rc=$2 out=$3 err=$4
  shift 5
  run $((our_wait + 5)) "$@"
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

# check_suite NAME STDOUT SUITE -- COMMAND...: runs our COMMAND (with -v 7): exit status 0,
# stdout exactly STDOUT, and stderr says "... cipher suite SUITE".
check_suite() {
  local name=$1 out=$2 suite=$3
  shift 4
  run $((our_wait + 5)) "$@"
  printf '%s' "$out" >"$work/want_out"
  if [[ $(cat "$work/rc") == 0 ]] && cmp -s "$work/out" "$work/want_out" &&
     grep -q " cipher suite $suite\$" "$work/err"; then
    ok "$name"
  else
    fail "$name"
    report 0 "$out" "... cipher suite $suite (among the -v 7 lines)"
  fi
}

# check_lc NAME STDOUT -- COMMAND...: runs libcoap's client COMMAND; stdout exactly STDOUT.
# (It exits 0 whatever happened and logs to stdout, so nothing else tells.)
check_lc() {
  local name=$1 out=$2
  shift 3
  run $((lc_wait + 5)) "$@"
  printf '%s' "$out" >"$work/want_out"
  if [[ $(cat "$work/rc") == 0 ]] && cmp -s "$work/out" "$work/want_out" && [[ ! -s $work/err ]]; then
    ok "$name"
  else
    fail "$name"
    report 0 "$out" ""
  fi
}

# check_lc_fails NAME PATTERN -- COMMAND...: runs libcoap's client COMMAND; stdout has no
# payload (no line starting "This is a test server") and a line matching PATTERN (grep -E).
check_lc_fails() {
  local name=$1 pattern=$2
  shift 3
  run $((lc_wait + 5)) "$@"
  if [[ $(cat "$work/rc") != 124 ]] && ! grep -q '^This is a test server' "$work/out" &&
     grep -Eq "$pattern" "$work/out"; then
    ok "$name"
  else
    fail "$name"
    report "not 124 (timeout)" "no payload, a line matching: $pattern" ""
  fi
}

# Ports: our servers and libcoap's use P (UDP, TCP) and P+1 (DTLS, TLS); server number i of
# this script gets P = base + 2i. The block is free when every port binds, UDP and TCP
# (TCP with SO_REUSEADDR, as the servers bind).
servers_max=20
ports_free() {
  python3 - "$1" "$((servers_max * 2))" 2>/dev/null <<'EOF'
import socket, sys
base, count = int(sys.argv[1]), int(sys.argv[2])
for port in range(base, base + count):
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        if kind == socket.SOCK_STREAM:
            # As the servers do: a connection in TIME_WAIT does not make the port busy.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            sys.exit(1)
        finally:
            s.close()
EOF
}
base_port=
start=${COAP_SECURE_INTEROP_PORT:-23000}
if command -v python3 >/dev/null; then
  for candidate in $(seq "$start" 100 $((start + 6900))); do
    ((candidate + 2 * servers_max < 30000)) || break
    if ports_free "$candidate"; then base_port=$candidate; break; fi
  done
else
  base_port=$start
fi
if [[ -z $base_port ]]; then
  echo "FAIL: no block of $((servers_max * 2)) free ports from $start up to 29999"
  exit 1
fi
echo "# ports $base_port-$((base_port + 2 * servers_max - 1)) on 127.0.0.1"
servers=0
next_port() { port=$((base_port + 2 * servers)); servers=$((servers + 1)); }

# start_ours NAME ARGS...: our coap-server on 127.0.0.1 with ARGS; waits for its DTLS and TLS
# listening lines (-v 6); sets port (DTLS and TLS listen on port+1).
start_ours() {
  local name=$1
  shift
  next_port
  local log=$work/our-server-$port.log
  "$our_server" -A 127.0.0.1 -p "$port" -v 6 "$@" 2>"$log" &
  local pid=$!
  pids+=("$pid")
  local _
  for _ in $(seq 1 100); do
    if grep -q "listening on 127\.0\.0\.1:$((port + 1)) DTLS" "$log" &&
       grep -q "listening on 127\.0\.0\.1:$((port + 1)) TLS" "$log"; then
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  fail "our coap-server ($name) did not start on port $port: $(head -c 300 "$log")"
  return 1
}

# start_libcoap SERVER NAME ARGS...: libcoap's SERVER on 127.0.0.1 with ARGS; waits until it
# answers coap://127.0.0.1:port/ (all its endpoints are made before it serves any); sets port.
start_libcoap() {
  local server=$1 name=$2
  shift 2
  next_port
  local log=$work/libcoap-server-$port.log
  "$server" -A 127.0.0.1 -p "$port" "$@" >"$log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  local _
  for _ in $(seq 1 25); do
    if timeout 5 "$lc_client_openssl" -B 1 "coap://127.0.0.1:$port/" 2>/dev/null |
       grep -q '^This is a test server made with libcoap'; then
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  fail "$server ($name) did not start on port $port: $(head -c 300 "$log")"
  return 1
}

our_root='This is a test server made with coap-cpp, a C++20 CoAP library on Boost.Asio.
Resources: /time, /echo, /counter; PUT creates others. See /.well-known/core.
'
libcoap_root='This is a test server made with libcoap (see https://libcoap.net)
Copyright (C) 2010--2022 Olaf Bergmann <bergmann@tzi.org> and others

'
key=secretPSK
identity=coap-client
ca=$certs/ca.crt
client_pki=(-c "$certs/client.crt" -j "$certs/client.key")
server_pki=(-c "$certs/server.crt" -j "$certs/server.key")
oc=("$our_client" -B "$our_wait")
schemes=(coaps coaps+tcp)
# What our client negotiates with libcoap's servers (and with ours): the suites RFC 7252
# mandates for CoAP, TLS_PSK_WITH_AES_128_CCM_8 and TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8.
psk_suite=PSK_WITH_AES_128_CCM_8
pki_suite=ECDHE_ECDSA_WITH_AES_128_CCM_8
# With an RSA certificate (section 6): TLS has no ECDHE_RSA suite with CCM, so AES-128-GCM.
rsa_suite=ECDHE_RSA_WITH_AES_128_GCM_SHA256

# ---- 1. our coap-server (PSK), libcoap's clients ----
echo "# 1. coap-cpp coap-server (PSK) <- libcoap coap-client-openssl, coap-client-gnutls"
our_psk_port=
if start_ours "PSK" -k "$key"; then
  our_psk_port=$port
  for client in "$lc_client_openssl" "$lc_client_gnutls"; do
    for scheme in "${schemes[@]}"; do
      check_lc "$client -> ours, PSK, $scheme: GET /" "$our_root"$'\n' -- \
        "$client" -B "$lc_wait" -u "$identity" -k "$key" "$scheme://127.0.0.1:$((port + 1))/"
    done
  done
fi

# ---- 2. libcoap's servers (PSK), our coap-client ----
echo "# 2. libcoap coap-server-openssl, coap-server-gnutls (PSK) <- coap-cpp coap-client"
declare -A lc_psk_port=()
for server in "$lc_server_openssl" "$lc_server_gnutls"; do
  start_libcoap "$server" "PSK" -k "$key" || continue
  lc_psk_port[$server]=$port
  for scheme in "${schemes[@]}"; do
    check_suite "ours -> $server, PSK, $scheme: GET /, cipher suite $psk_suite" \
      "$libcoap_root"$'\n' "$psk_suite" -- \
      "${oc[@]}" -v 7 -u "$identity" -k "$key" "$scheme://127.0.0.1:$((port + 1))/"
  done
done

# ---- 3. certificates, both directions ----
echo "# 3. certificates (server.crt, client.crt, -C ca.crt), both directions"
our_pki_port=
if start_ours "certificates, -C ca.crt" "${server_pki[@]}" -C "$ca"; then
  our_pki_port=$port
  for client in "$lc_client_openssl" "$lc_client_gnutls"; do
    for scheme in "${schemes[@]}"; do
      check_lc "$client -> ours, certificates, $scheme: GET /" "$our_root"$'\n' -- \
        "$client" -B "$lc_wait" "${client_pki[@]}" -C "$ca" "$scheme://127.0.0.1:$((port + 1))/"
    done
  done
fi
for server in "$lc_server_openssl" "$lc_server_gnutls"; do
  start_libcoap "$server" "certificates, -C ca.crt" "${server_pki[@]}" -C "$ca" || continue
  for scheme in "${schemes[@]}"; do
    check_suite "ours -> $server, certificates, $scheme: GET /, cipher suite $pki_suite" \
      "$libcoap_root"$'\n' "$pki_suite" -- \
      "${oc[@]}" -v 7 "${client_pki[@]}" -C "$ca" "$scheme://127.0.0.1:$((port + 1))/"
  done
done

# ---- 4. failures ----
echo "# 4. failures"
# A wrong key: coap-server-openssl's TLS answers the bad Finished with bad_record_mac(20).
if [[ -n ${lc_psk_port[$lc_server_openssl]:-} ]]; then
  check "ours -> $lc_server_openssl, PSK, wrong key, coaps+tcp: TLS alert: bad record MAC" \
    1 "" $'coap-client: TLS alert: bad record MAC\n' -- \
    "${oc[@]}" -u "$identity" -k wrongPSK "coaps+tcp://127.0.0.1:$((lc_psk_port[$lc_server_openssl] + 1))/"
fi
# Server certificates our client must refuse (libcoap's servers do not ask for one of ours).
for server in "$lc_server_openssl" "$lc_server_gnutls"; do
  for bad in untrusted expired nosan; do
    case $bad in
      untrusted) alert='unknown CA' ;;
      expired) alert='certificate expired' ;;
      nosan) alert='bad certificate' ;;  # names localhost, not 127.0.0.1 (RFC 7252 9.1.3.3)
    esac
    start_libcoap "$server" "$bad.crt" -c "$certs/$bad.crt" -j "$certs/$bad.key" || continue
    for scheme in "${schemes[@]}"; do
      check "ours -C ca.crt -> $server presenting $bad.crt, $scheme: TLS alert: $alert" \
        1 "" "coap-client: TLS alert: $alert"$'\n' -- \
        "${oc[@]}" "${client_pki[@]}" -C "$ca" "$scheme://127.0.0.1:$((port + 1))/"
    done
  done
done
# libcoap's client with a wrong key: our TLS server sends bad_record_mac(20).
if [[ -n $our_psk_port ]]; then
  check_lc_fails "$lc_client_openssl -> ours, PSK, wrong key, coaps+tcp: no payload, alert bad record mac" \
    'alert read:fatal:bad record mac' -- \
    "$lc_client_openssl" -B "$lc_wait" -u "$identity" -k wrongPSK "coaps+tcp://127.0.0.1:$((our_psk_port + 1))/"
fi
# No client certificate: our server with -C refuses it with handshake_failure(40); with -n
# it lets the client in.
if [[ -n $our_pki_port ]]; then
  for scheme in "${schemes[@]}"; do
    check_lc_fails "$lc_client_openssl without a certificate -> ours -C ca.crt, $scheme: no payload, alert handshake failure" \
      'alert read:fatal:handshake failure' -- \
      "$lc_client_openssl" -B "$lc_wait" -C "$ca" "$scheme://127.0.0.1:$((our_pki_port + 1))/"
  done
fi
if start_ours "certificates, -C ca.crt -n" "${server_pki[@]}" -C "$ca" -n; then
  for scheme in "${schemes[@]}"; do
    check_lc "$lc_client_openssl without a certificate -> ours -C ca.crt -n, $scheme: GET /" \
      "$our_root"$'\n' -- \
      "$lc_client_openssl" -B "$lc_wait" -C "$ca" "$scheme://127.0.0.1:$((port + 1))/"
  done
fi

# ---- 5. our coap-client, our coap-server ----
echo "# 5. coap-cpp coap-server <- coap-cpp coap-client"
if [[ -n $our_psk_port ]]; then
  for scheme in "${schemes[@]}"; do
    check_suite "ours -> ours, PSK, $scheme: GET /, cipher suite $psk_suite" "$our_root"$'\n' "$psk_suite" -- \
      "${oc[@]}" -v 7 -u "$identity" -k "$key" "$scheme://127.0.0.1:$((our_psk_port + 1))/"
  done
fi
if [[ -n $our_pki_port ]]; then
  for scheme in "${schemes[@]}"; do
    check_suite "ours -> ours, certificates, $scheme: GET /, cipher suite $pki_suite" "$our_root"$'\n' "$pki_suite" -- \
      "${oc[@]}" -v 7 "${client_pki[@]}" -C "$ca" "$scheme://127.0.0.1:$((our_pki_port + 1))/"
    check "ours without a certificate -> ours -C ca.crt, $scheme: TLS alert: handshake failure" \
      1 "" $'coap-client: TLS alert: handshake failure\n' -- \
      "${oc[@]}" -C "$ca" "$scheme://127.0.0.1:$((our_pki_port + 1))/"
  done
fi

# ---- 6. key formats ----
echo "# 6. key formats (-j): SEC 1 and PKCS #1 RSA, PEM and DER; refused keys"
for form in sec1.key sec1.key.der rsa.key rsa.key.der; do
  case $form in
    sec1.key) what='SEC 1 PEM after EC PARAMETERS' ;;
    sec1.key.der) what='SEC 1 DER' ;;
    rsa.key) what='PKCS #1 RSA PEM' ;;
    rsa.key.der) what='PKCS #1 RSA DER' ;;
  esac
  start_ours "-j $form" -c "$certs/${form%%.*}.crt" -j "$certs/$form" -C "$ca" || continue
  for client in "$lc_client_openssl" "$lc_client_gnutls"; do
    check_lc "$client -> ours -j $form ($what), coaps: GET /" "$our_root"$'\n' -- \
      "$client" -B "$lc_wait" "${client_pki[@]}" -C "$ca" "coaps://127.0.0.1:$((port + 1))/"
  done
  case $form in
    sec1.*) suite=$pki_suite ;;
    rsa.*) suite=$rsa_suite ;;
  esac
  # Our client presents its key as SEC 1 too.
  check_suite "ours -j client.sec1.key -> ours -j $form ($what), coaps: GET /, cipher suite $suite" \
    "$our_root"$'\n' "$suite" -- \
    "${oc[@]}" -v 7 -c "$certs/client.crt" -j "$certs/client.sec1.key" -C "$ca" "coaps://127.0.0.1:$((port + 1))/"
done
# Refused: the tools exit 1 and name the file and the reason.
check "our coap-server -c server.crt -j client.key: key does not match certificate" \
  1 "" "coap-server: certificates: key file '$certs/client.key': does not match certificate file '$certs/server.crt'"$'\n' -- \
  "$our_server" -A 127.0.0.1 -p 0 -c "$certs/server.crt" -j "$certs/client.key"
check "our coap-server -j no-such.key: cannot read it" \
  1 "" "coap-server: certificates: key file '$certs/no-such.key': cannot read it: No such file or directory"$'\n' -- \
  "$our_server" -A 127.0.0.1 -p 0 -c "$certs/server.crt" -j "$certs/no-such.key"
check "our coap-server -c server.key: no certificate in it" \
  1 "" "coap-server: certificates: certificate file '$certs/server.key': no certificate in it (PEM blocks: PRIVATE KEY)"$'\n' -- \
  "$our_server" -A 127.0.0.1 -p 0 -c "$certs/server.key" -j "$certs/server.key"
check "our coap-client -j server.encrypted.key: encrypted keys are not supported" \
  1 "" "coap-client: certificates: key file '$certs/server.encrypted.key': unsupported key format: encrypted PKCS #8 (decrypt it, e.g. openssl pkcs8 -nocrypt)"$'\n' -- \
  "${oc[@]}" -c "$certs/server.crt" -j "$certs/server.encrypted.key" -C "$ca" "coaps://127.0.0.1:$((base_port + 1))/"

echo "interop (secure): $passed passed, $failed failed"
[[ $failed == 0 ]]
