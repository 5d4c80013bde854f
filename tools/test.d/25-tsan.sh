#!/usr/bin/env bash
# ThreadSanitizer on the tests that run threads: coap/shards.hpp's shards, each a context on
# its own thread (issue 16). A data race, a lock-order inversion or a failed check fails the
# stage. The build has its own output directory (bazel-out/k8-fastbuild-tsan), about a minute
# the first time.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

targets=(//tests:shards_test)
passed=0
failed=0
for t in "${targets[@]}"; do
  if out=$(bazel test --config=tsan --jobs=2 --test_output=errors "$t" 2>&1); then
    echo "ok: $t under ThreadSanitizer"
    passed=$((passed + 1))
  else
    echo "$out" | grep -E "ThreadSanitizer|SUMMARY|error|FAILED" | head -20
    echo "FAIL: $t under ThreadSanitizer"
    failed=$((failed + 1))
  fi
done
echo "tsan: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
