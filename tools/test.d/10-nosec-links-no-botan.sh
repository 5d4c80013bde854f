#!/usr/bin/env bash
# A NoSec program does not link Botan: neither the build graph of the example tools (which
# use only no_sec) nor their linked libraries contain it.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

status=0
targets=(//examples:coap-client //examples:coap-server //examples:snippet_client_session)
query="deps($(IFS=+; echo "${targets[*]}"))"
if ! deps=$(bazel query --noshow_progress "$query" 2>&1); then
  echo "FAIL: bazel query $query"
  echo "$deps" | tail -20
  exit 1
fi
echo "build graph of ${targets[*]}: $(echo "$deps" | wc -l) targets"
if echo "$deps" | grep -i botan; then
  echo "FAIL: the build graph above reaches Botan"
  status=1
else
  echo "ok: no Botan target in the build graph"
fi

bazel build --noshow_progress "${targets[@]}" >/dev/null 2>&1 || { echo "FAIL: bazel build"; exit 1; }
for t in coap-client coap-server snippet_client_session; do
  if ldd "bazel-bin/examples/$t" | grep -i botan; then
    echo "FAIL: bazel-bin/examples/$t links Botan"
    status=1
  else
    echo "ok: bazel-bin/examples/$t does not link Botan ($(ldd "bazel-bin/examples/$t" | wc -l) shared libraries)"
  fi
done
exit $status
