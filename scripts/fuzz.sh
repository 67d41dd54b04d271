#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for a fixed time each, seeded from its
# committed corpus (fuzz/corpus/<target>, read only; new inputs go to fuzz/corpus-run/).
# A crash fails the script and leaves the input in fuzz/artifacts/<target>/. Installs
# cargo-fuzz first when it is missing. CI (.ci/run) runs it with the default time.
#
#   bash scripts/fuzz.sh [seconds per target, default 20] [target ...]
#
# The targets link only crates/mediadb-formats (the parsers), not the server, so the
# instrumented build stays a few minutes on two cores.
#
# cargo-fuzz passes -Z flags to rustc; RUSTC_BOOTSTRAP=1 lets the stable toolchain take
# them. Set FUZZ_SANITIZER=address for AddressSanitizer (slower; the code under test is
# safe Rust, so the default is none).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-20}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(lenient_json search_query multipart probe metadata psd)
fi
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --version 0.13.2
fi
san=${FUZZ_SANITIZER:-none}
cargo fuzz build -s "$san"
mkdir -p corpus-run
for t in "${targets[@]}"; do
    mkdir -p "corpus-run/$t"
    log="corpus-run/$t.log"
    echo "fuzz: $t for ${secs}s"
    status=0
    cargo fuzz run -s "$san" "$t" "corpus-run/$t" "corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E "^stat::(number_of_executed_units|peak_rss_mb)|Done [0-9]+ runs" "$log" || true
    if [ "$status" -ne 0 ]; then
        grep -E "panicked|ERROR|SUMMARY|Test unit written|Failing input" "$log" || tail -40 "$log"
        echo "fuzz: $t found a crash (input in fuzz/artifacts/$t)"
        exit 1
    fi
done
