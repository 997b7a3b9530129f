#!/usr/bin/env bash
# A performance gate for your own notification service: its base build and the PR's build,
# measured alternately on one machine by `pollpush swarm`, combined per side, compared.
#
#   BASE_CMD='cd base && node server.js' PR_CMD='cd pr && node server.js' \
#     examples/ci/gate.sh scenarios/socketio.toml --redis-url redis://127.0.0.1:6379/
#
# Arguments: the scenario (with a [target] table that says how to speak to the service),
# then anything more for `pollpush swarm` (e.g. --redis-url for a Redis-fed service).
# Environment:
#   BASE_CMD, PR_CMD  shell commands that start the base and the PR's build of the service
#                     in the foreground; the service prints its URL (the first http://... on
#                     its stdout or stderr, e.g. "listening on http://127.0.0.1:3000"), or
#                     set SERVICE_URL and the gate waits until it accepts connections.
#   SERVICE_URL       the service's URL, when it does not print it.
#   ROLE              push (default), poll, or all: which of the scenario's modes the
#                     service serves; its URL goes to --push-url, --poll-url, or both.
#   MEASURE           how the service's CPU and memory are read: metrics (default: its
#                     Prometheus endpoint at METRICS_PATH, --push-metrics), pid (from
#                     /proc: the command must `exec` the service, so that the process
#                     started is the service itself), or none (they stay null).
#   METRICS_PATH      its Prometheus endpoint (default /metrics).
#   REPEATS           runs per side, alternating base and PR (default 3).
#   OUT               the folder for every run, both combined results and compare.md
#                     (default gate-result; emptied first).
#   POLLPUSH          the pollpush binary (default: pollpush on PATH).
#   READY_TIMEOUT     seconds a service may take to start (default 60).
#   COMPARE_ARGS      more arguments for `pollpush compare` (e.g. --max-regression ...).
# Exit: 0 no regression; 1 a regression, or the PR's build failed the scenario's checks
# (lost, duplicated or misrouted notifications fail whatever the latency); 2 bad input
# or a service that did not start or could not be reached (not a regression).
# With GITHUB_STEP_SUMMARY set, the comparison is appended to the job summary.
set -uo pipefail

die() {
    echo "gate: error: $*" >&2
    exit 2
}

[ $# -ge 1 ] || die "usage: BASE_CMD=... PR_CMD=... $0 SCENARIO [swarm arguments...]"
scenario=$1
shift
[ -f "$scenario" ] || die "scenario $scenario: no such file"
[ -n "${BASE_CMD:-}" ] || die "BASE_CMD is not set: the command that starts the base build of the service"
[ -n "${PR_CMD:-}" ] || die "PR_CMD is not set: the command that starts the PR's build of the service"
pollpush=${POLLPUSH:-pollpush}
command -v "$pollpush" >/dev/null 2>&1 || die "$pollpush not found: install pollpush or set POLLPUSH"
role=${ROLE:-push}
case "$role" in push | poll | all) ;; *) die "ROLE=$role: use push, poll or all" ;; esac
measure=${MEASURE:-metrics}
case "$measure" in metrics | pid | none) ;; *) die "MEASURE=$measure: use metrics, pid or none" ;; esac
repeats=${REPEATS:-3}
[[ "$repeats" =~ ^[1-9][0-9]*$ ]] || die "REPEATS=$repeats: use a whole number of 1 or more"
metrics_path=${METRICS_PATH:-/metrics}
ready_timeout=${READY_TIMEOUT:-60}
out=${OUT:-gate-result}
rm -rf "$out"
mkdir -p "$out/base" "$out/pr" "$out/logs" || die "cannot create $out"

service_pid=""
stop_service() {
    if [ -n "$service_pid" ]; then
        kill -TERM -- "-$service_pid" 2>/dev/null
        for _ in $(seq 50); do
            kill -0 "$service_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$service_pid" 2>/dev/null
        wait "$service_pid" 2>/dev/null
        service_pid=""
    fi
}
trap stop_service EXIT
trap 'stop_service; exit 130' INT TERM

# Starts a build of the service in its own process group; sets $url.
start_service() { # side log
    local cmd
    cmd=$([ "$1" = base ] && echo "$BASE_CMD" || echo "$PR_CMD")
    setsid bash -c "$cmd" >"$2" 2>&1 </dev/null &
    service_pid=$!
    url=""
    local waited=0
    while [ -z "$url" ]; do
        if ! kill -0 "$service_pid" 2>/dev/null; then
            echo "gate: the $1 service exited before it was ready; its output ($2):" >&2
            tail -n 20 "$2" >&2
            exit 2
        fi
        if [ -n "${SERVICE_URL:-}" ]; then
            local hostport=${SERVICE_URL#http://}
            hostport=${hostport%%/*}
            if (exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}") 2>/dev/null; then
                url=$SERVICE_URL
            fi
        else
            url=$(grep -o -m1 'http://[^ "]*' "$2" | head -n1)
        fi
        if [ -z "$url" ]; then
            [ "$waited" -lt $((ready_timeout * 10)) ] || die "the $1 service was not ready within ${ready_timeout}s (no URL on its output; set SERVICE_URL if it prints none); see $2"
            sleep 0.1
            waited=$((waited + 1))
        fi
    done
    url=${url%/}
}

bad=0
failed=0
runs() { # side
    local side=$1 i=$2 log="$out/logs/$1-$2"
    shift 2
    start_service "$side" "$log-service.log"
    local args=() r
    for r in $([ "$role" = all ] && echo poll push || echo "$role"); do
        args+=("--$r-url" "$url")
        case $measure in
            metrics) args+=("--$r-metrics" "$url$metrics_path") ;;
            pid) args+=("--$r-pid" "$service_pid") ;;
        esac
    done
    echo "gate: $side run $i of $repeats against $url" >&2
    "$pollpush" swarm "$scenario" --quiet --out "$out/$side/$i" "${args[@]}" "$@" \
        >"$log-swarm.txt" 2>&1
    local code=$?
    stop_service
    case $code in
        0) ;;
        1)
            if [ "$side" = pr ]; then
                echo "gate: the PR's run $i failed the scenario's checks:" >&2
                failed=1
            else
                echo "gate: warning: the base's run $i failed the scenario's checks:" >&2
            fi
            grep -E 'FAILED|error' "$log-swarm.txt" >&2
            ;;
        *)
            echo "gate: pollpush swarm exited $code against the $side build ($log-swarm.txt):" >&2
            tail -n 5 "$log-swarm.txt" >&2
            bad=1
            ;;
    esac
}

for i in $(seq "$repeats"); do
    runs base "$i" "$@"
    [ "$bad" = 0 ] || exit 2
    runs pr "$i" "$@"
    [ "$bad" = 0 ] || exit 2
done

# One result per side: the runs combined as `run --repeat` would have written them.
combined() { # side
    result="$out/$1/1"
    [ "$repeats" -gt 1 ] || return 0
    result="$out/$1-combined"
    "$pollpush" combine "$out/$1"/[0-9]* --out "$result" --quiet >"$out/logs/$1-combine.txt" 2>&1
    case $? in
        0) ;;
        1) [ "$1" = base ] || failed=1 ;;
        *)
            cat "$out/logs/$1-combine.txt" >&2
            exit 2
            ;;
    esac
}
combined base
base=$result
combined pr
pr=$result

# COMPARE_ARGS split on spaces, never globbed: '*.latency_ms.p99=30' stays a pattern.
set -f
# shellcheck disable=SC2206
compare_args=(${COMPARE_ARGS:-})
set +f
"$pollpush" compare "$base" "$pr" --format markdown "${compare_args[@]}" >"$out/compare.md"
code=$?
cat "$out/compare.md"
[ -z "${GITHUB_STEP_SUMMARY:-}" ] || cat "$out/compare.md" >>"$GITHUB_STEP_SUMMARY"
case $code in
    0) ;;
    1) failed=1 ;;
    *) exit 2 ;;
esac
if [ "$failed" = 1 ]; then
    echo "gate: FAIL (the PR's build regressed or failed the scenario's checks; runs in $out)" >&2
    exit 1
fi
echo "gate: pass ($repeats run(s) per side; runs in $out)" >&2
