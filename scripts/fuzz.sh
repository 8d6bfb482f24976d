#!/usr/bin/env bash
# Coverage-guided fuzzing of what faces every same-origin script's messages: the protocol
# decoder (fuzz/fuzz_targets/decode.rs) and the arbiter with its engine, lock services
# included (fuzz/fuzz_targets/arbiter.rs). libFuzzer through cargo-fuzz, on stable Rust
# (no sanitizer: `-s none`; Rust's own checks and the targets' assertions are the oracle).
#
#   scripts/fuzz.sh                  # each target for RUNS executions (default 100,000)
#   RUNS=10000000 scripts/fuzz.sh    # the long run (about 10 minutes on this 2-core VM)
#
# A crash stops it with a non-zero status; libFuzzer writes the input to fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: run scripts/setup.sh" >&2; exit 1; }
RUNS=${RUNS:-100000}
for t in decode arbiter; do
  echo "fuzz $t: $RUNS executions"
  cargo fuzz run "$t" -s none -- -runs="$RUNS" -print_final_stats=1 2>&1 |
    grep -E "^(Done |stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added)|panicked|ERROR|SUMMARY|Test unit written"
done
