#!/usr/bin/env bash
# `data/{id}` GET and search top-20 measured with wrk (a C load generator on one thread)
# against `mediadb serve` on N preloaded assets, beside `mediadb bench http`'s own client:
# on a 2-core machine client and server share the cores, and wrk costs the server less.
#
#   scripts/bench-wrk.sh [ASSETS] [SECONDS] [CONNECTIONS]
#   BIN=target/release/mediadb DATA_DIR=/tmp/wrk100k scripts/bench-wrk.sh 100000 10 64
#
# Needs wrk (Debian: apt-get install -y wrk) and curl; builds nothing (BIN must exist).
set -euo pipefail
ASSETS=${1:-100000}
SECS=${2:-10}
CONN=${3:-64}
BIN=${BIN:-target/release/mediadb}
DIR=${DATA_DIR:-$(mktemp -d /tmp/mediadb-wrk.XXXXXX)}
PORT=${PORT:-18580}
PASS=wrk-bench-$RANDOM$RANDOM
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install -y wrk)"; exit 1; }

# The catalog, loaded through the store as `bench http` does (its 1 s GET phase is a warm-up).
"$BIN" bench http --assets "$ASSETS" --seconds 1 --phases get --data-dir "$DIR" --password "$PASS" >/dev/null

MEDIADB_DATA_DIR="$DIR" MEDIADB_LISTEN="127.0.0.1:$PORT" "$BIN" serve >/dev/null 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -f /tmp/mediadb-wrk-$$.*.lua' EXIT
for _ in $(seq 1 200); do
    curl -fs -o /dev/null "http://127.0.0.1:$PORT/healthz" && break
    sleep 0.05
done
BASE="http://127.0.0.1:$PORT/assets/mediadb/services"
KEY=$(curl -fs -H 'Content-Type: application/json' -d "{\"id\":\"admin\",\"password\":\"$PASS\"}" \
    "$BASE/authentication/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["results"]["entermediakey"])')

READS=$((ASSETS / 2))
cat >/tmp/mediadb-wrk-$$.get.lua <<LUA
wrk.headers["X-entermedia.key"] = "$KEY"
request = function()
  return wrk.format("GET", string.format("/assets/mediadb/services/module/asset/data/b%08d", math.random(0, $READS - 1)))
end
LUA
# The keywords bench http searches: WORDS[i % 40] .. (i / 40) for i < 300.
cat >/tmp/mediadb-wrk-$$.search.lua <<LUA
local words = {"harbor", "sunset", "mountain", "river", "portrait", "market", "festival", "bridge", "forest",
  "desert", "city", "night", "winter", "summer", "garden", "street", "ocean", "island", "castle", "village",
  "train", "airport", "museum", "concert", "stadium", "school", "office", "factory", "farm", "beach", "lake",
  "valley", "canyon", "temple", "church", "tower", "harvest", "parade", "wedding", "launch"}
wrk.headers["X-entermedia.key"] = "$KEY"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local i = math.random(0, 299)
  local kw = words[(i % 40) + 1] .. math.floor(i / 40)
  local body = '{"hitsperpage":"20","query":{"terms":[{"field":"keywords","operation":"matches","value":"' .. kw .. '"}]}}'
  return wrk.format("POST", "/assets/mediadb/services/module/asset/search", nil, body)
end
LUA
echo "== $(date -u +%FT%TZ) assets=$ASSETS seconds=$SECS connections=$CONN load: $(cut -d' ' -f1-3 /proc/loadavg)"
for phase in get search; do
    echo "-- $phase"
    wrk -t1 -c"$CONN" -d"${SECS}s" --latency -s /tmp/mediadb-wrk-$$.$phase.lua "http://127.0.0.1:$PORT" |
        grep -E 'Requests/sec|Non-2xx|Socket errors|^ +(50|99)%'
    grep -E 'VmRSS|VmHWM' /proc/$PID/status | tr -s ' \t' ' ' | tr '\n' ' '
    echo
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
