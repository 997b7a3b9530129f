#!/usr/bin/env bash
# The swarm's own latency against an independent yardstick: the same Socket.IO server
# (tests/fixtures/socketio/server.js) measured by `pollpush swarm scenarios/socketio.toml`
# and by the official socket.io-client (tests/fixtures/socketio/client.js), taking turns,
# ROUNDS times, at the same load. A swarm that added latency of its own would read higher
# in every round. This is a benchmark, not a test: two latencies of a millisecond measured
# on one shared machine trade places from round to round (a CI runner once read 0.759
# against 0.421 ms), so the figures go in the README, judged by their medians.
#
#   benches/socketio-client.sh                    # 300 clients, 100 events/s, 5 s, 5 rounds
#   USERS=1000 DURATION=10 ROUNDS=3 benches/socketio-client.sh
#
# Needs: cargo, node and npm (the fixture's packages are installed on first use), and the
# PostgreSQL and Redis binaries that `pollpush serve` starts its ephemeral services from.
set -euo pipefail

USERS=${USERS:-300}
RATE=${RATE:-100}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-5}
bench=socketio-client
# shellcheck source=benches/node-fixture.sh
. "$(dirname "$0")/node-fixture.sh"
out=${OUT:-$(mktemp -d)}

# An ingest server only for its ephemeral Redis (its URL is written to a private file).
"$bin" serve --role ingest --port 0 >"$out/ingest.out" 2>"$out/ingest.err" &
pids+=($!)
ready "$out/ingest.out" "pollpush: listening on " >/dev/null
urls=$(grep -o '/[^ ]*/urls.env' "$out/ingest.err" | head -1)
set -a
# shellcheck disable=SC1090
. "$urls"
set +a
(cd "$fixture" && PORT=0 exec node server.js) >"$out/node.out" 2>"$out/node.err" &
pids+=($!)
url=$(ready "$out/node.out" "listening on ")

echo "| round | swarm p50 (ms) | socket.io-client p50 (ms) | swarm / client |"
echo "|---:|---:|---:|---:|"
for round in $(seq 1 "$ROUNDS"); do
    "$bin" swarm "$root/scenarios/socketio.toml" --quiet --out "$out/swarm-$round" \
        --push-url "$url" --redis-url "$REDIS_URL" --set "users.count=$USERS" \
        --set "workload.events_per_s=$RATE" --set "duration=${DURATION}s" \
        >"$out/swarm-$round.log" 2>&1
    (cd "$fixture" && URL=$url USERS=$USERS EVENTS_PER_S=$RATE DURATION_S=$DURATION \
        node client.js) >"$out/client-$round.json" 2>"$out/client-$round.err"
    python3 - "$out/swarm-$round/summary.json" "$out/client-$round.json" "$round" <<'PY'
import json, sys
swarm = json.load(open(sys.argv[1]))["modes"]["push"]["latency_ms"]["p50"]
client = json.loads(open(sys.argv[2]).read())["latency_ms"]["p50"]
print(f"| {sys.argv[3]} | {swarm:.3f} | {client:.3f} | {swarm / client:.2f} |")
PY
done
