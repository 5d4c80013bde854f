#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (FUZZ_SECONDS each, 20 by default); any crash,
# sanitizer report, leak or property violation fails the test. See tools/fuzz.
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/../fuzz"
