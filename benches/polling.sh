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
#   benches/polling.sh                      # 64 connections, 10 s each, 3 rounds
#   CONNS=32 SECONDS_EACH=5 ROUNDS=1 benches/polling.sh
#
# Needs: cargo, wrk (installed with apt-get when missing and run as root), pgbench, and the
# PostgreSQL and Redis binaries that `pollpush serve` starts its ephemeral services from.
# Writes polling.md (and each tool's raw output) in the output folder.
set -euo pipefail

CONNS=${CONNS:-64}
SECONDS_EACH=${SECONDS_EACH:-10}
ROUNDS=${ROUNDS:-3}
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
# The data both read: 10,000 users with 5 notifications each, analyzed, so that Postgres
# plans the poll's SELECT as it would for a real inbox table (on a table of a few users it
# may pick a plan that walks the primary key instead). Each poll, of the API (user 5000)
# and of pgbench (a user drawn from 1..10,000), asks for what came after an id no
# notification has reached: one SELECT that finds nothing new, with the same parameters.
psql -q "$DATABASE_URL" >/dev/null <<'EOF'
INSERT INTO users (id, name) SELECT u, 'user ' || u FROM generate_series(1, 10000) u ON CONFLICT DO NOTHING;
INSERT INTO notifications (user_id, payload) SELECT u, '{"seed":true}' FROM generate_series(1, 10000) u, generate_series(1, 5);
ANALYZE;
EOF
after=1000000000
token=$(python3 -c 'import hmac, hashlib, sys; k = bytes.fromhex(sys.argv[1]); print("5000." + hmac.new(k, b"5000", hashlib.sha256).hexdigest())' "$POLLPUSH_TOKEN_KEY")
cat >"$out/poll.sql" <<EOF
\\set uid random(1, 10000)
\\set after $after
\\set page 100
SELECT id, payload::text FROM notifications WHERE user_id = :uid AND id > :after ORDER BY id LIMIT :page;
EOF

# Each pair alternates, ROUNDS times: this machine's speed drifts by tens of percent from
# one minute to the next, so each ratio is taken within a round and the table gives the
# medians.
for round in $(seq 1 "$ROUNDS"); do
    # 1. The generators on /healthz.
    echo "polling: round $round: wrk, $CONNS connections on /healthz" >&2
    cpu_of wrk -t2 -c"$CONNS" -d"${SECONDS_EACH}s" "http://$addr/healthz" \
        2>"$out/wrk-healthz-$round.cpu" >"$out/wrk-healthz-$round.txt"
    echo "polling: round $round: pollpush swarm, $CONNS users on /healthz" >&2
    "$bin" swarm "$out/swarm-healthz.toml" --quiet --out "$out/swarm-healthz-$round" \
        --poll-url "http://$addr" --redis-url "$REDIS_URL" >"$out/swarm-healthz-$round.log" 2>&1 || true
    # 2. The poll API and pgbench on one Postgres.
    echo "polling: round $round: wrk, $CONNS connections on the poll API" >&2
    wrk -t2 -c"$CONNS" -d"${SECONDS_EACH}s" -H "Authorization: Bearer $token" \
        "http://$addr/notifications?after=$after" >"$out/wrk-poll-$round.txt"
    echo "polling: round $round: pgbench, $CONNS clients, the poll's SELECT" >&2
    pgbench -n -M prepared -c "$CONNS" -j 2 -T "$SECONDS_EACH" -f "$out/poll.sql" "$DATABASE_URL" \
        >"$out/pgbench-$round.txt" 2>&1
done

python3 - "$out" "$CONNS" "$ROUNDS" <<'EOF'
import json, re, statistics, sys
out, conns, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def wrk(name):
    text = open(f"{out}/{name}.txt").read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    secs = float(re.search(r"requests in ([\d.]+)s", text).group(1))
    return rps, secs
rows = []
for r in range(1, rounds + 1):
    wrk_rps, wrk_secs = wrk(f"wrk-healthz-{r}")
    wrk_cores = float(open(f"{out}/wrk-healthz-{r}.cpu").read().split()[-1]) / wrk_secs
    s = json.load(open(f"{out}/swarm-healthz-{r}/summary.json"))["modes"]["poll"]
    swarm_rps = s["http"]["requests_per_min"] / 60
    api_rps = wrk(f"wrk-poll-{r}")[0]
    pg_tps = float(re.search(r"tps = ([\d.]+)", open(f"{out}/pgbench-{r}.txt").read()).group(1))
    rows.append(dict(wrk=wrk_rps, wrk_cores=wrk_cores, swarm=swarm_rps,
                     swarm_cores=s["cpu"]["swarm_cores"], api=api_rps, pg=pg_tps,
                     gen=swarm_rps / wrk_rps, poll=api_rps / pg_tps))
def med(k):
    return statistics.median(r[k] for r in rows)
def each(k):
    return ", ".join(f"{r[k]:.2f}" for r in rows)
lines = [
    f"# The polling side against its yardsticks: {conns} connections, on this machine", "",
    f"Medians of {rounds} rounds; in each round the four ran one after the other.", "",
    "| what | requests/s | CPU (cores) | CPU per request (µs) |", "|---|---:|---:|---:|",
    f"| wrk on /healthz | {med('wrk'):,.0f} | {med('wrk_cores'):.2f} | {med('wrk_cores') * 1e6 / med('wrk'):.1f} |",
    f"| pollpush swarm on /healthz | {med('swarm'):,.0f} | {med('swarm_cores'):.2f} | {med('swarm_cores') * 1e6 / med('swarm'):.1f} |",
    f"| the poll API (`serve --role poll --poll-auth none`) driven by wrk | {med('api'):,.0f} | | |",
    f"| pgbench, the poll's SELECT (prepared) | {med('pg'):,.0f} | | |", "",
    f"- the swarm's poll generator / wrk, requests/s: **{med('gen'):.2f}** (target >= 0.6; each round: {each('gen')})",
    f"- the poll API / pgbench: **{med('poll'):.2f}** (target >= 0.5; each round: {each('poll')})", "",
    "Measured by `benches/polling.sh`; wrk's CPU from its rusage, the swarm's from /proc over "
    "its window. Raw outputs beside this file.",
]
text = "\n".join(lines)
open(f"{out}/polling.md", "w").write(text + "\n")
print(text)
EOF
