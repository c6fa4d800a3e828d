#!/usr/bin/env bash
# A CPU profile of one instance of SYSTEM (ours, ours-live, engine or socketioxide-redis) under compare.sh's fixed load:
# 3 instances on one Redis (pinned to CPU 0), 1500 users in rooms of 10 at 2 msg/s each
# (loadtest on CPU 1), `perf record -g` of the first instance for 15 s in the middle of the
# run. Writes bench/results/<OUT>-<system>.txt (perf report, flat, top symbols).
# With SCOPE=cpu0, the whole of CPU 0 instead (the 3 instances, Redis, the kernel's work for
# them, idle), reported by process first: where the system under test's core goes.
#
# RATE=N loads N msg/s per user instead of 2 (6 is 81,000 deliveries/s, 8 is 108,000).
#
# Usage: [SCOPE=cpu0] [KEEP=perf.data] [RATE=2] bench/profile.sh SYSTEM OUT   (after a release build: compare.sh builds one)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
system=$1 out=$2 rate=${RATE:-2}
command -v perf >/dev/null || { echo "missing perf: install the Debian package linux-perf" >&2; exit 1; }
WORK=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

redis_port=$(free_port)
taskset -c 0 redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
    --dir "$WORK" >/dev/null 2>&1 &
pids+=($!)
sleep 0.3
login=()
if [ "$system" = ours ] || [ "$system" = ours-live ]; then
    printf 'bench-password\n' | "$ROOT/target/release/gateway" add-user \
        --users-file "$WORK/users.json" --username bench --tenant bench --name bench >/dev/null
    login=(--login bench:bench-password)
fi
urls=()
for _ in 1 2 3; do
    port=$(free_port)
    case $system in
        ours | ours-live)
            history=()
            [ "$system" = ours-live ] && history=(--no-history)
            GATEWAY_MAX_SOCKETS_PER_USER=1000000 GATEWAY_MAX_SOCKETS_PER_SESSION=1000000 \
                GATEWAY_MAX_OPENS_PER_ADDRESS=1000000 taskset -c 0 "$ROOT/target/release/gateway" \
                --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$(free_port)" \
                --redis-url "redis://127.0.0.1:$redis_port" --worker-threads 1 "${history[@]}" \
                --users-file "$WORK/users.json" --rate-login 1000000/60s \
                --rate-handshake 1000000/60s --rate-message 1000000/60s >/dev/null 2>&1 &
            ;;
        socketioxide-redis)
            RUST_LOG=warn taskset -c 0 \
                "$ROOT/bench/peers/socketioxide-redis/target/release/peer-socketioxide-redis" \
                --listen "127.0.0.1:$port" --redis-url "redis://127.0.0.1:$redis_port" \
                --worker-threads 1 >/dev/null 2>&1 &
            ;;
        engine)
            taskset -c 0 "$ROOT/target/release/engine-chat" --listen "127.0.0.1:$port" \
                --redis-url "redis://127.0.0.1:$redis_port" --worker-threads 1 >/dev/null 2>&1 &
            ;;
        *) echo "unknown system $system" >&2; exit 1 ;;
    esac
    pids+=($!)
    urls+=("http://127.0.0.1:$port")
done
first=${pids[1]}
for url in "${urls[@]}"; do
    for _ in $(seq 100); do curl -fsS "$url/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
done
list=$(IFS=,; echo "${urls[*]}")
taskset -c 1 "$ROOT/target/release/loadtest" chat --url "$list" --users 1500 --room-size 10 \
    --rate "$rate" --duration 30s --source-ips 127.0.0.1-127.0.0.8 "${login[@]}" --no-progress \
    >"$WORK/loadtest.log" 2>&1 &
load=$!
sleep 10
if [ "${SCOPE:-instance}" = cpu0 ]; then
    target=(-a -C 0)
    scope="all of CPU 0 (3 instances, Redis, kernel, idle)"
else
    target=(-p "$first")
    scope="one of 3 instances"
fi
perf record -F 999 -g "${target[@]}" -o "$WORK/perf.data" -- sleep 15 >/dev/null 2>&1
# KEEP=FILE keeps the recording for further reports.
[ -z "${KEEP:-}" ] || cp "$WORK/perf.data" "$KEEP"
wait "$load" || true
mkdir -p bench/results
{
    echo "# ${SCOPE:+SCOPE=$SCOPE }bench/profile.sh $system $out: perf record -F 999 -g of $scope, 15 s"
    echo "# of loadtest chat --users 1500 --room-size 10 --rate $rate ($((rate * 13500)) deliveries/s offered in all)"
    grep -E "deliveries/s|latency|loss" "$WORK/loadtest.log" || true
    if [ "${SCOPE:-instance}" = cpu0 ]; then
        echo "# by process"
        perf report -i "$WORK/perf.data" --stdio --no-children --sort comm 2>/dev/null \
            | grep -E '^ +[0-9]' | head -15 || true
        echo "# by process and binary/library"
        perf report -i "$WORK/perf.data" --stdio --no-children --sort comm,dso 2>/dev/null \
            | grep -E '^ +[0-9]' | head -25 || true
    fi
    perf report -i "$WORK/perf.data" --stdio --no-children --sort dso,symbol 2>/dev/null \
        | grep -v '^$' | grep -E '^ +[0-9]' | head -60 || true
    echo "# by binary/library (dso)"
    perf report -i "$WORK/perf.data" --stdio --no-children --sort dso 2>/dev/null \
        | grep -E '^ +[0-9]' | head -15 || true
} | sed -E 's/[[:space:]]+-[[:space:]]+-$//; s/[[:space:]]*$//' >"bench/results/$out-$system.txt"
echo "wrote bench/results/$out-$system.txt"
