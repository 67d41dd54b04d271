#!/usr/bin/env bash
# Media benchmark, whole processes side by side on one 24 MP camera JPEG:
#   - renditions: `mediadb convert` against libvips' `vipsthumbnail --size NxN` and
#     ImageMagick's `convert -thumbnail` (what EnterMediaDB runs), at 200 and 3000 px, and
#     every on-import preset (`--preset all`: 4 JPEG + 4 WebP from one decode);
#   - metadata: the in-process reader (mean of many probes in one process) against exiftool,
#     both as a process per file (what EnterMediaDB runs) and through one `-stay_open` process.
# Prints the median wall time and the peak RSS of each case, and the ratios the media issue
# targets. Needs vipsthumbnail (apt-get install -y libvips-tools) and GNU time (apt-get
# install -y time); ImageMagick (apt-get install -y imagemagick) and exiftool (apt-get
# install -y libimage-exiftool-perl) are measured when installed.
#
# Usage: scripts/bench-media.sh [INPUT.jpg] [RUNS]
#        FEATURES=turbojpeg scripts/bench-media.sh ...   # the optional libjpeg-turbo decoder
#                                                        # (apt-get install -y libturbojpeg0-dev pkg-config)
#        NO_BUILD=1 scripts/bench-media.sh ...           # the binaries already built, as they are
set -euo pipefail

cd "$(dirname "$0")/.."
INPUT=$(realpath "${1:-../shared/fixtures/media/DSC00750.jpg}")
RUNS=${2:-9}

for tool in vipsthumbnail /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y libvips-tools time)" >&2; exit 2; }
done
# A real ImageMagick (a `convert` earlier on PATH may be something else).
MAGICK=
for c in magick /usr/bin/convert convert; do
    if command -v "$c" >/dev/null && "$c" -version 2>/dev/null | grep -q ImageMagick; then MAGICK=$c; break; fi
done
EXIFTOOL=$(command -v exiftool || true)

# NO_BUILD=1 measures the binaries already in the target directory (e.g. while sources change).
if [ -z "${NO_BUILD:-}" ]; then
    cargo build --release --bin mediadb --example convert ${FEATURES:+--features "$FEATURES"} >&2
fi
echo "build: release${FEATURES:+, features: $FEATURES}${NO_BUILD:+ (existing binaries)}"
TARGET=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
BIN=$TARGET/release/mediadb
PROBE=$TARGET/release/examples/convert
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# run NAME CMD...: RUNS timed runs; prints "NAME median_microseconds max_rss_kib"
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

# Cases alternate between the tools so that a change in the machine's load hits them alike.
{
    run mediadb-200 "$BIN" convert "$INPUT" --preset thumbimage --output "$OUT/m200.jpg"
    run vips-200 vipsthumbnail "$INPUT" --size 200x200 -o "$OUT/v200.jpg[Q=85]"
    run mediadb-3000 "$BIN" convert "$INPUT" --preset largeimage --output "$OUT/m3000.jpg"
    run vips-3000 vipsthumbnail "$INPUT" --size 3000x3000 -o "$OUT/v3000.jpg[Q=85]"
    run mediadb-all "$BIN" convert "$INPUT" --preset all --output "$OUT/all"
    if [ -n "$MAGICK" ]; then
        run magick-200 "$MAGICK" "$INPUT" -auto-orient -thumbnail 200x200 -quality 85 "$OUT/i200.jpg"
        run magick-3000 "$MAGICK" "$INPUT" -auto-orient -thumbnail 3000x3000 -quality 85 "$OUT/i3000.jpg"
    fi
    if [ -n "$EXIFTOOL" ]; then
        run exiftool-process "$EXIFTOOL" -json -n -fast2 "$INPUT"
    fi
} >"$OUT/results.txt"

echo "input: $INPUT, $RUNS runs each, median wall time of the whole process, peak RSS"
awk '{ printf "  %-17s %8.1f ms %8.1f MiB\n", $1, $2 / 1000, $3 / 1024 }' "$OUT/results.txt"
awk '
    { t[$1] = $2; m[$1] = $3 }
    END {
        printf "ratios (mediadb / vipsthumbnail):\n"
        printf "  200 px:  time %.2f (target <= 0.50)  memory %.2f (target <= 1.2)\n", t["mediadb-200"] / t["vips-200"], m["mediadb-200"] / m["vips-200"]
        printf "  3000 px: time %.2f (target <= 0.75)  memory %.2f (target <= 1.2)\n", t["mediadb-3000"] / t["vips-3000"], m["mediadb-3000"] / m["vips-3000"]
        printf "  all 8 presets (jpg + webp, one decode) vs vips 3000 px alone: time %.2f (target <= 1.0)  memory %.2f\n", t["mediadb-all"] / t["vips-3000"], m["mediadb-all"] / m["vips-3000"]
        if ("magick-200" in t) {
            printf "ratios (mediadb / ImageMagick):\n"
            printf "  200 px:  time %.2f  memory %.2f\n", t["mediadb-200"] / t["magick-200"], m["mediadb-200"] / m["magick-200"]
            printf "  3000 px: time %.2f  memory %.2f\n", t["mediadb-3000"] / t["magick-3000"], m["mediadb-3000"] / m["magick-3000"]
        }
    }' "$OUT/results.txt"

echo "metadata of one file:"
"$PROBE" "$INPUT" --probe 2000 | sed 's/^/  in-process: /'
if [ -n "$EXIFTOOL" ]; then
    # One -stay_open process fed the same file N times: the per-file cost once Perl is up.
    N=200
    for _ in $(seq $N); do printf '%s\n%s\n%s\n%s\n%s\n' -json -n -fast2 "$INPUT" -execute; done >"$OUT/args.txt"
    # The process ends once it reaches this, after answering every request before it.
    printf -- '-stay_open\nFalse\n' >>"$OUT/args.txt"
    start=$(date +%s%N)
    "$EXIFTOOL" -stay_open True -@ "$OUT/args.txt" >/dev/null 2>&1 </dev/null
    end=$(date +%s%N)
    awk -v us=$(( (end - start) / 1000 )) -v n=$N 'BEGIN { printf "  exiftool -stay_open: %.1f us per file (%d files, one process, start included)\n", us / n, n }'
    awk '$1 == "exiftool-process" { printf "  exiftool, a process per file: %.1f ms per file (median)\n", $2 / 1000 }' "$OUT/results.txt"
fi
