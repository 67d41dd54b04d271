#!/usr/bin/env bash
# Upload throughput and what limits it (BENCHMARKS.md, "Uploads"): starts a fresh server,
# uploads FILE 400 times from 8 clients (examples/upload_bench), waits until every import
# job has finished, and prints uploads/s, imports finished per second, and the CPU time of
# the server process and of the run's PostgreSQL backends.
#
# usage: scripts/bench-uploads.sh LABEL WORKERS sqlite|pg [s3]
#   WORKERS 0 defers the conversions (uploads only); 2 is the server's default.
#   pg needs PGDB (a scratch database, dropped and created again), s3 a moto server at
#   S3 (default http://127.0.0.1:5000). BIN and UPLOAD_BENCH name the release binaries.
set -u
LABEL=$1; WORKERS=$2; DB=$3; USE_S3=${4:-}
BIN=${BIN:-./target/release/mediadb}
UPLOAD_BENCH=${UPLOAD_BENCH:-./target/release/examples/upload_bench}
FILE=${FILE:-../shared/fixtures/media/test-asset-02.jpg}
PORT=${PORT:-18087}
S3=${S3:-http://127.0.0.1:5000}
DIR=${OUT:-/tmp/bench-uploads}/$LABEL
rm -rf "$DIR"; mkdir -p "$DIR"
ENVS=(MEDIADB_ADMIN_PASSWORD=bench MEDIADB_LISTEN=127.0.0.1:$PORT MEDIADB_DATA_DIR=$DIR MEDIADB_WORKERS=$WORKERS)
if [ "$DB" = pg ]; then
  : "${PGDB:?set PGDB to a scratch database}"
  dropdb -h 127.0.0.1 -U postgres --if-exists "$PGDB"; createdb -h 127.0.0.1 -U postgres "$PGDB"
  ENVS+=(MEDIADB_DATABASE_URL=postgres://postgres@127.0.0.1:5432/$PGDB)
  queued() { psql -h 127.0.0.1 -U postgres "$PGDB" -Atc "SELECT count(*) FROM jobs WHERE state IN ('queued','running')"; }
else
  PGDB=none
  queued() { sqlite3 "$DIR/mediadb.sqlite" "SELECT count(*) FROM jobs WHERE state IN ('queued','running')"; }
fi
if [ -n "$USE_S3" ]; then
  BUCKET=b$(date +%s%N); curl -s -X PUT "$S3/$BUCKET" >/dev/null
  ENVS+=(AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_REGION=us-east-1
         "MEDIADB_STORAGE=s3://$BUCKET/run?aws_endpoint=$S3&aws_allow_http=true")
fi
env "${ENVS[@]}" "$BIN" serve > "$DIR/server.log" 2>&1 &
SPID=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
# CPU in clock ticks: the server process (its exited threads included) and the backends
# serving the run's database.
server_ticks() { awk '{print $14+$15}' /proc/$SPID/stat; }
pg_ticks() { for p in $(pgrep -f "postgres $PGDB "); do awk '{print $14+$15}' /proc/$p/stat 2>/dev/null; done | awk '{s+=$1} END {print s+0}'; }
S0=$(server_ticks); P0=$(pg_ticks); T0=$(date +%s.%N)
"$UPLOAD_BENCH" "http://127.0.0.1:$PORT" bench "$FILE" 400 8
T1=$(date +%s.%N); S1=$(server_ticks); P1=$(pg_ticks)
if [ "$WORKERS" != 0 ]; then
  while [ "$(queued)" != 0 ]; do sleep 0.2; done
fi
T2=$(date +%s.%N); S2=$(server_ticks); P2=$(pg_ticks)
HZ=$(getconf CLK_TCK)
python3 - "$T0" "$T1" "$T2" "$S0" "$S1" "$S2" "$P0" "$P1" "$P2" "$HZ" "$LABEL" <<'PY'
import sys
t0, t1, t2 = map(float, sys.argv[1:4]); s0, s1, s2, p0, p1, p2, hz = map(int, sys.argv[4:11])
ms = lambda ticks: ticks * 1000 / hz / 400
print(f"{sys.argv[11]}: uploads done in {t1 - t0:.1f} s, imports done at {t2 - t0:.1f} s "
      f"({400 / (t2 - t0):.1f} assets/s end to end); CPU per asset: server {ms(s2 - s0):.1f} ms "
      f"(upload phase {ms(s1 - s0):.1f}), PostgreSQL {ms(p2 - p0):.1f} ms; load {open('/proc/loadavg').read().split()[0]}")
PY
kill $SPID; wait $SPID 2>/dev/null
