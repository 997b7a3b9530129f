#!/usr/bin/env bash
# How sensitive is the gate? Runs examples/ci/gate.sh TRIALS times per condition against the
# Socket.IO fixture (tests/fixtures/socketio, `npm ci` done), the PR side slowed by a knob
# (none: the false-alarm rate), and writes what it measured: each gate's exit code and the
# two sides' combined latency, then the detection rate per condition.
#
#   REDIS_URL=redis://127.0.0.1:6379/ examples/ci/sensitivity.sh [OUT]
#
# Environment: REDIS_URL (the fixture's Redis, required), TRIALS (default 8), REPEATS (per
# side, default 3), CONDITIONS (default "none BUSY_US=100 BUSY_US=250 DELAY_MS=1
# DELAY_MS=20"), SWARM_SET (default "duration=10s"), POLLPUSH (default
# target/release/pollpush). Needs python3. The table: examples/ci/sensitivity-table.py.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${1:-target/gate-sensitivity}
: "${REDIS_URL:?set REDIS_URL to the Redis the fixture listens on}"
trials=${TRIALS:-8}
conditions=${CONDITIONS:-none BUSY_US=100 BUSY_US=250 DELAY_MS=1 DELAY_MS=20}
export POLLPUSH=${POLLPUSH:-target/release/pollpush}
export REPEATS=${REPEATS:-3}
export POLLPUSH_TOKEN_KEY=${POLLPUSH_TOKEN_KEY:-$(python3 -c 'import secrets; print(secrets.token_hex(32))')}
mkdir -p "$out/runs"
csv="$out/gates.csv"
echo "repeats,condition,trial,exit,base_p50_ms,pr_p50_ms,base_p99_ms,pr_p99_ms,regressions" >"$csv"
fx=tests/fixtures/socketio
for t in $(seq "$trials"); do
    for c in $conditions; do
        knob=$([ "$c" = none ] && echo "" || echo "$c")
        dir="$out/runs/$c-$t"
        BASE_CMD="cd $fx && PORT=0 exec node server.js" \
            PR_CMD="cd $fx && PORT=0 $knob exec node server.js" OUT="$dir" \
            examples/ci/gate.sh scenarios/socketio.toml --redis-url "$REDIS_URL" \
            --set "${SWARM_SET:-duration=10s}" >"$dir.log" 2>&1
        code=$?
        python3 - "$dir" "$c" "$t" "$code" >>"$csv" <<'PY'
import json, re, sys, os
d, c, t, code = sys.argv[1:]
def lat(side):
    p = os.path.join(d, side + ("-combined" if os.path.isdir(os.path.join(d, side + "-combined")) else "/1"), "summary.json")
    try:
        l = json.load(open(p))["modes"]["push"]["latency_ms"]
        return l["p50"], l["p99"]
    except Exception:
        return "", ""
(b50, b99), (p50, p99) = lat("base"), lat("pr")
md = open(os.path.join(d, "compare.md")).read() if os.path.exists(os.path.join(d, "compare.md")) else ""
regs = " ".join(re.findall(r"\| `([^`]+)` \|[^\n]*REGRESSION", md))
print(f"{os.environ['REPEATS']},{c},{t},{code},{b50},{p50},{b99},{p99},{regs}")
PY
        echo "$(date -u +%T) $c trial $t: exit $code" >&2
    done
done
python3 examples/ci/sensitivity-table.py "$csv" >"$out/table.md"
cat "$out/table.md"
