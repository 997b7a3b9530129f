#!/usr/bin/env bash
# The polling side's own speed, each part against a yardstick run beside it on this machine:
#
# 1. The swarm's poll generator against wrk: the same trivial endpoint (GET /healthz of
#    `pollpush serve`, an empty JSON array that touches nothing), the same number of
#    connections, one after the other. Requests/s and CPU per request of each generator.
#    The swarm should reach at least 60 % of wrk's rate, or it would measure itself.
# 2. The poll API against pgbench: `pollpush serve --role poll --poll-auth none` (a signed
#    token, one SELECT a poll, nothing new) driven by wrk, and pgbench running that same
#    SELECT, prepared, on the same Postgres with the same number of clients. The API
#    should serve at least half of pgbench's rate, or polling would be strawmanned.
#
#   benches/polling.sh                      # 64 connections, 10 s each
#   CONNS=32 SECONDS_EACH=5 benches/polling.sh
#
# Needs: cargo, wrk (installed with apt-get when missing and run as root), pgbench, and the
# PostgreSQL and Redis binaries that `pollpush serve` starts its ephemeral services from.
# Writes polling.md (and each tool's raw output) in the output folder.
set -euo pipefail

CONNS=${CONNS:-64}
SECONDS_EACH=${SECONDS_EACH:-10}
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/results/polling-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$out"

if ! command -v wrk >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get install -y -qq wrk >/dev/null
    else
        echo "polling: wrk is needed (Debian: apt-get install wrk)" >&2
        exit 2
    fi
fi
command -v pgbench >/dev/null || {
    echo "polling: pgbench is needed (Debian: apt-get install postgresql-client)" >&2
    exit 2
}

cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin=$root/target/release/pollpush

POLLPUSH_TOKEN_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export POLLPUSH_TOKEN_KEY
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT

"$bin" serve --role poll --poll-auth none --port 0 >"$out/server.out" 2>"$out/server.err" &
server_pid=$!
pids+=("$server_pid")
for _ in $(seq 1 300); do
    grep -q "listening on http://" "$out/server.out" 2>/dev/null && break
    sleep 0.1
done
addr=$(grep -m1 -o 'listening on http://[^ ]*' "$out/server.out" | sed 's|listening on http://||')
[ -n "$addr" ] || { echo "polling: the server did not start; see $out/server.err" >&2; exit 1; }
urls=$(grep -o '/[^ ]*/urls.env' "$out/server.err" | head -1)
set -a
# shellcheck disable=SC1090
. "$urls"
set +a

# Runs a command; prints the CPU seconds (user + system) it and its children used.
cpu_of() {
    python3 - "$@" <<'EOF'
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=False)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{r.ru_utime + r.ru_stime:.3f}", file=sys.stderr)
EOF
}
wrk_rate() { awk '/^Requests\/sec:/ {print $2}' "$1"; }

# 1. Generators on /healthz.
echo "polling: wrk, $CONNS connections on /healthz" >&2
wrk_cpu=$(cpu_of wrk -t2 -c"$CONNS" -d"${SECONDS_EACH}s" "http://$addr/healthz" 2>&1 >"$out/wrk-healthz.txt")
cat >"$out/swarm-healthz.toml" <<EOF
name = "polling-generator"
description = "pollpush swarm's poll generator as fast as it goes: $CONNS users, each asking again as soon as it is answered (long polling's loop, on an endpoint that answers at once)"
duration = "${SECONDS_EACH}s"
warmup = "2s"
modes = ["poll"]
seed = 1
[users]
count = $CONNS
[poll]
long = true
[workload]
events_per_s = 0.001
[target.poll]
path = "/healthz"
items = ""
auth = { via = "none" }
[target.emit]
via = "redis"
channel = "polling-bench-unused"
message = '{"id":{event},"user_id":{user},"payload":{payload}}'
EOF
echo "polling: pollpush swarm, $CONNS users on /healthz" >&2
"$bin" swarm "$out/swarm-healthz.toml" --quiet --out "$out/swarm-healthz" \
    --poll-url "http://$addr" --redis-url "$REDIS_URL" >"$out/swarm-healthz.log" 2>&1 || true

# 2. The poll API and pgbench on one Postgres.
token=$(python3 -c 'import hmac, hashlib, sys; k = bytes.fromhex(sys.argv[1]); print("1." + hmac.new(k, b"1", hashlib.sha256).hexdigest())' "$POLLPUSH_TOKEN_KEY")
echo "polling: wrk, $CONNS connections on the poll API" >&2
wrk -t2 -c"$CONNS" -d"${SECONDS_EACH}s" -H "Authorization: Bearer $token" \
    "http://$addr/notifications?after=0" >"$out/wrk-poll.txt"
cat >"$out/poll.sql" <<'EOF'
\set uid random(1, 10000)
SELECT id, payload::text FROM notifications WHERE user_id = :uid AND id > 0 ORDER BY id LIMIT 100;
EOF
echo "polling: pgbench, $CONNS clients, the poll's SELECT" >&2
pgbench -n -M prepared -c "$CONNS" -j 2 -T "$SECONDS_EACH" -f "$out/poll.sql" "$DATABASE_URL" \
    >"$out/pgbench.txt" 2>&1

python3 - "$out" "$CONNS" "$(wrk_rate "$out/wrk-healthz.txt")" "$wrk_cpu" \
    "$(wrk_rate "$out/wrk-poll.txt")" <<'EOF'
import json, re, sys
out, conns, wrk_rps, wrk_cpu, api_rps = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
m = re.search(r"requests in ([\d.]+)s", open(f"{out}/wrk-healthz.txt").read())
wrk_secs = float(m.group(1))
s = json.load(open(f"{out}/swarm-healthz/summary.json"))["modes"]["poll"]
swarm_rps = s["http"]["requests_per_min"] / 60
swarm_cores = s["cpu"]["swarm_cores"]
pg = re.search(r"tps = ([\d.]+)", open(f"{out}/pgbench.txt").read())
pg_tps = float(pg.group(1))
wrk_cores = wrk_cpu / wrk_secs
rows = [
    f"# The polling side against its yardsticks: {conns} connections, on this machine", "",
    "| what | requests/s | CPU (cores) | CPU per request (µs) |", "|---|---:|---:|---:|",
    f"| wrk on /healthz | {wrk_rps:,.0f} | {wrk_cores:.2f} | {wrk_cores * 1e6 / wrk_rps:.1f} |",
    f"| pollpush swarm on /healthz | {swarm_rps:,.0f} | {swarm_cores:.2f} | {swarm_cores * 1e6 / swarm_rps:.1f} |",
    f"| the poll API (`serve --role poll --poll-auth none`) driven by wrk | {api_rps:,.0f} | | |",
    f"| pgbench, the poll's SELECT (prepared) | {pg_tps:,.0f} | | |", "",
    f"- the swarm's poll generator / wrk, requests/s: **{swarm_rps / wrk_rps:.2f}** (target >= 0.6)",
    f"- the poll API / pgbench: **{api_rps / pg_tps:.2f}** (target >= 0.5)", "",
    "Measured one after the other in one run of `benches/polling.sh`; wrk's CPU from its rusage, "
    "the swarm's from /proc over its window. Raw outputs beside this file.",
]
text = "\n".join(rows)
open(f"{out}/polling.md", "w").write(text + "\n")
print(text)
EOF
