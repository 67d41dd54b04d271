#!/usr/bin/env bash
# Renditions benchmark: `mediadb convert` (examples/convert.rs, the same library function the
# subcommand calls) against libvips' `vipsthumbnail`, whole processes, side by side, on one
# 24 MP camera JPEG. Prints the median wall time and peak RSS of each case and the ratios the
# media issue targets. Needs vipsthumbnail (apt-get install -y libvips-tools) and GNU time
# (apt-get install -y time).
#
# Usage: scripts/bench-media.sh [INPUT.jpg] [RUNS]
set -euo pipefail

cd "$(dirname "$0")/.."
INPUT=${1:-../shared/fixtures/media/DSC00750.jpg}
RUNS=${2:-7}

for tool in vipsthumbnail /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y libvips-tools time)" >&2; exit 2; }
done

cargo build --release --example convert >&2
BIN=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release/examples/convert
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# run NAME CMD...: RUNS timed runs; prints "NAME median_seconds max_rss_kib"
run() {
    local name=$1; shift
    local times=() rss=0
    "$@" >/dev/null 2>&1 # warm the page cache
    for _ in $(seq "$RUNS"); do
        local start end kib
        start=$(date +%s%N)
        /usr/bin/time -v -o "$OUT/time.txt" "$@" >/dev/null 2>&1
        end=$(date +%s%N)
        times+=($(( (end - start) / 1000 )))
        kib=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$OUT/time.txt")
        (( kib > rss )) && rss=$kib
    done
    local median
    median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")
    printf '%s %s %s\n' "$name" "$median" "$rss"
}

{
    run mediadb-200 "$BIN" "$INPUT" --preset thumbimage --output "$OUT/m200.jpg"
    run vips-200 vipsthumbnail "$INPUT" --size 200x200 -o "$OUT/v200.jpg[Q=85]"
    run mediadb-3000 "$BIN" "$INPUT" --preset largeimage --output "$OUT/m3000.jpg"
    run vips-3000 vipsthumbnail "$INPUT" --size 3000x3000 -o "$OUT/v3000.jpg[Q=85]"
    run mediadb-all "$BIN" "$INPUT" --all "$OUT/all"
} >"$OUT/results.txt"

echo "input: $INPUT, $RUNS runs each, median wall time, peak RSS"
awk '{ printf "  %-13s %8.1f ms %8.1f MiB\n", $1, $2 / 1000, $3 / 1024 }' "$OUT/results.txt"
awk '
    { t[$1] = $2; m[$1] = $3 }
    END {
        printf "ratios (mediadb / vipsthumbnail):\n"
        printf "  200 px:  time %.2f (target <= 0.50)  memory %.2f (target <= 1.2)\n", t["mediadb-200"] / t["vips-200"], m["mediadb-200"] / m["vips-200"]
        printf "  3000 px: time %.2f (target <= 0.75)  memory %.2f (target <= 1.2)\n", t["mediadb-3000"] / t["vips-3000"], m["mediadb-3000"] / m["vips-3000"]
        printf "  all 8 presets (jpg + webp, one decode) vs vips 3000 px alone: time %.2f (target <= 1.0)  memory %.2f\n", t["mediadb-all"] / t["vips-3000"], m["mediadb-all"] / m["vips-3000"]
    }' "$OUT/results.txt"
"$BIN" "$INPUT" --probe 2000
