# Sourced by the benchmarks that run the Socket.IO fixture beside pollpush
# (side-by-side.sh, socketio-client.sh); set `bench` to the script's name first. Gives:
# `root`, a release `bin`, the `fixture` with its npm packages, a fresh POLLPUSH_TOKEN_KEY
# shared by every process, `pids` killed at exit, and `ready FILE PREFIX`.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
command -v node >/dev/null && command -v npm >/dev/null || {
    echo "$bench: node and npm are needed for the Socket.IO fixture" >&2
    exit 2
}
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin=$root/target/release/pollpush
fixture=$root/tests/fixtures/socketio
[ -d "$fixture/node_modules" ] || (cd "$fixture" && npm ci --silent --no-audit --no-fund)

POLLPUSH_TOKEN_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export POLLPUSH_TOKEN_KEY
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT

# Waits for a line starting with $2 in file $1 and prints the rest of it.
ready() {
    for _ in $(seq 1 300); do
        if line=$(grep -m1 "^$2" "$1" 2>/dev/null); then
            echo "${line#"$2"}"
            return
        fi
        sleep 0.1
    done
    echo "$bench: no '$2' in $1" >&2
    exit 1
}
