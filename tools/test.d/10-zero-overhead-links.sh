#!/usr/bin/env bash
# No cost for what a program does not use (issue 5, "zero overhead"):
#   - a NoSec program does not link Botan: neither its build graph nor its binary;
#   - a PSK program reaches no certificate code of ours (//security:pki), and its binary has
#     no PKI state or path validation in it;
#   - a PKI program reaches no PSK code of ours (//security:psk).
# The programs are the coap_session(3) snippets (examples/snippets) and the NoSec benchmark
# servers.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

status=0
ok() { echo "ok: $1"; }
fail() { echo "FAIL: $1"; status=1; }

# graph_has TARGET PATTERN: the build graph of TARGET mentions PATTERN.
graph() {
  bazel query --noshow_progress "deps($1)" 2>/dev/null
}

nosec=(//examples:snippet_client_session //bench:udp_bench_server //bench:tcp_bench_server)
for t in "${nosec[@]}"; do
  deps=$(graph "$t") || { fail "bazel query deps($t)"; continue; }
  if grep -qi botan <<<"$deps"; then fail "$t reaches Botan: $(echo "$deps" | grep -i botan | head -3 | tr '\n' ' ')"
  else ok "$t: no Botan in its build graph ($(echo "$deps" | wc -l) targets)"; fi
done

deps=$(graph //examples:snippet_client_session_psk) || fail "bazel query psk snippet"
if grep -q '^//security:pki$' <<<"$deps"; then fail "the PSK snippet reaches //security:pki"
else ok "//examples:snippet_client_session_psk: no //security:pki in its build graph"; fi
deps=$(graph //examples:snippet_client_session_pki) || fail "bazel query pki snippet"
if grep -q '^//security:psk$' <<<"$deps"; then fail "the PKI snippet reaches //security:psk"
else ok "//examples:snippet_client_session_pki: no //security:psk in its build graph"; fi

if ! bazel build --noshow_progress //examples:snippet_client_session //examples:snippet_client_session_psk \
    //examples:snippet_client_session_pki //bench:udp_bench_server //bench:tcp_bench_server >/dev/null 2>&1; then
  fail "bazel build of the programs"
  exit 1
fi
for b in examples/snippet_client_session bench/udp_bench_server bench/tcp_bench_server; do
  if grep -qi botan <<<"$(ldd "bazel-bin/$b")"; then fail "bazel-bin/$b links Botan"
  else ok "bazel-bin/$b does not link Botan ($(ldd "bazel-bin/$b" | wc -l) shared libraries)"; fi
done
# The PSK binary: Botan's TLS yes, our certificate code and Botan's path validation no; the
# PKI binary the other way round. Each is checked against the other, so that the absence is
# not an artefact of nm or of the symbol names.
symbols() {
  [[ -f $1 ]] || { echo "FAIL: $1 was not built" >&2; return 1; }
  nm -C "$1"
}
psk_symbols=$(symbols bazel-bin/examples/snippet_client_session_psk) || status=1
pki_symbols=$(symbols bazel-bin/examples/snippet_client_session_pki) || status=1
pki_code='coap::security::pki_state::\|x509_path_validate'
psk_code='coap::security::psk_state::'
if ! grep -q "$pki_code" <<<"$pki_symbols" || ! grep -q "$psk_code" <<<"$psk_symbols"; then
  fail "the snippets do not contain their own security code: the checks below would mean nothing"
elif grep -q "$pki_code" <<<"$psk_symbols"; then
  fail "the PSK snippet contains PKI code: $(echo "$psk_symbols" | grep "$pki_code" | head -3)"
else
  ok "the PSK snippet has no pki_state or x509_path_validate (the PKI snippet has both)"
fi
if grep -q "$psk_code" <<<"$pki_symbols"; then
  fail "the PKI snippet contains PSK code: $(echo "$pki_symbols" | grep "$psk_code" | head -3)"
else
  ok "the PKI snippet has no psk_state (the PSK snippet has it)"
fi
exit $status
