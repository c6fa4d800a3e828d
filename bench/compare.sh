#!/usr/bin/env bash
# Side-by-side benchmark of three Socket.IO stacks, each with its own Redis and three
# instances on loopback, driven by the same `loadtest` steps:
#   ours                our gateway + redis-adapter
#   socketioxide-redis  socketioxide 0.18 + the stock socketioxide-redis 0.4 adapter
#   node                socket.io 4.8 + @socket.io/redis-adapter 8.3 on ioredis
# The system under test (3 instances + Redis) is pinned to CPU 0 and the load tester to CPU 1.
#
# Usage: bench/compare.sh [system ...]      (default: all three)
# Env:   FIXED_DURATION (20s) STEP_DURATION (10s) IDLE_CONNECTIONS (10000) RATES ("0.5 1 2 3 4 5 6 8 12")
# Writes bench/results/compare-<date>.md and .json, and prints the table.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

FIXED_DURATION=${FIXED_DURATION:-20s}
STEP_DURATION=${STEP_DURATION:-10s}
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-10000}
RATES=${RATES:-"0.5 1 2 3 4 5 6 8 12"}
USERS=1500
ROOM_SIZE=10
P99_LIMIT_MS=50
SYSTEMS=("$@")
[ ${#SYSTEMS[@]} -gt 0 ] || SYSTEMS=(ours socketioxide-redis node)

SUT_CPU=0
LOAD_CPU=1
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

need() { command -v "$1" >/dev/null || { echo "missing $1: install the Debian package $2" >&2; exit 1; }; }
need redis-server redis-server
need node nodejs
need taskset util-linux
need python3 python3
need curl curl

echo "== building (release)"
cargo build --release --quiet -p gateway -p loadtest
cargo build --release --quiet --manifest-path bench/peers/socketioxide-redis/Cargo.toml
(cd bench/peers/node && npm ci --no-audit --no-fund --loglevel=error)
LOADTEST=$ROOT/target/release/loadtest

# Our gateway requires a login when clustered: one bench account, every simulated user logs
# in with it (its own session each). Limits are raised so they never throttle the run, but
# every message still costs its rate-limit check in Redis.
BENCH_PASSWORD=bench-password
printf '%s\n' "$BENCH_PASSWORD" | "$ROOT/target/release/gateway" add-user \
    --users-file "$WORK/users.json" --username bench --tenant bench --name bench >/dev/null
UNLIMITED=1000000/60s

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_http() {
    for _ in $(seq 1 100); do
        curl -fsS "$1/healthz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "no answer from $1" >&2
    return 1
}

# start_instance SYSTEM PORT REDIS_URL -> prints the pid
start_instance() {
    local system=$1 port=$2 redis=$3
    case $system in
        ours)
            taskset -c $SUT_CPU "$ROOT/target/release/gateway" --listen "127.0.0.1:$port" \
                --redis-url "$redis" --worker-threads 1 --log-format json \
                --users-file "$WORK/users.json" --rate-login $UNLIMITED \
                --rate-handshake $UNLIMITED --rate-message $UNLIMITED --rate-dm $UNLIMITED \
                >"$WORK/$system-$port.log" 2>&1 &
            ;;
        socketioxide-redis)
            RUST_LOG=warn taskset -c $SUT_CPU \
                "$ROOT/bench/peers/socketioxide-redis/target/release/peer-socketioxide-redis" \
                --listen "127.0.0.1:$port" --redis-url "$redis" --worker-threads 1 \
                >"$WORK/$system-$port.log" 2>&1 &
            ;;
        node)
            taskset -c $SUT_CPU node "$ROOT/bench/peers/node/server.mjs" --port "$port" \
                --redis-url "$redis" >"$WORK/$system-$port.log" 2>&1 &
            ;;
    esac
    echo $!
}

# loadtest SCENARIO JSON ARGS... : run pinned to the load CPU; never fails the script
run_loadtest() {
    local json=$1
    shift
    taskset -c $LOAD_CPU "$LOADTEST" "$@" --no-progress --json "$json" >"$json.log" 2>&1 || true
}

jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); v=d
for k in sys.argv[2].split("."): v=v.get(k) if isinstance(v,dict) else None
print("" if v is None else v)' "$1" "$2" 2>/dev/null || true; }

for system in "${SYSTEMS[@]}"; do
    echo "== $system"
    redis_port=$(free_port)
    taskset -c $SUT_CPU redis-server --bind 127.0.0.1 --port "$redis_port" --save "" \
        --appendonly no --dir "$WORK" >"$WORK/redis-$system.log" 2>&1 &
    redis_pid=$!
    PIDS+=("$redis_pid")
    sleep 0.3
    urls=()
    pids=()
    for _ in 1 2 3; do
        port=$(free_port)
        pid=$(start_instance "$system" "$port" "redis://127.0.0.1:$redis_port")
        PIDS+=("$pid")
        pids+=("$pid")
        urls+=("http://127.0.0.1:$port")
    done
    for url in "${urls[@]}"; do wait_http "$url"; done
    sleep 1
    url_list=$(IFS=,; echo "${urls[*]}")
    pid_list=$(IFS=,; echo "${pids[*]},$redis_pid")
    common=(--url "$url_list" --server-pid "$pid_list" --source-ips 127.0.0.1-127.0.0.8)
    login=()
    [ "$system" = ours ] && login=(--login "bench:$BENCH_PASSWORD")
    common+=("${login[@]}")

    echo "   fixed load: $USERS users, rooms of $ROOM_SIZE, 2 msg/s each, $FIXED_DURATION"
    run_loadtest "$WORK/$system-fixed.json" chat "${common[@]}" --users $USERS \
        --room-size $ROOM_SIZE --rate 2 --duration "$FIXED_DURATION"

    best=0
    best_rate=""
    for rate in $RATES; do
        json="$WORK/$system-rate-$rate.json"
        run_loadtest "$json" chat "${common[@]}" --users $USERS --room-size $ROOM_SIZE \
            --rate "$rate" --duration "$STEP_DURATION"
        dps=$(jget "$json" deliveries_per_sec)
        p99=$(jget "$json" latency_ms.p99)
        expected=$(jget "$json" expected)
        received=$(jget "$json" received)
        echo "   rate $rate/s per user: ${dps:-?} deliveries/s, p99 ${p99:-?} ms, received ${received:-?}/${expected:-?}"
        if [ -n "$dps" ] && [ -n "$expected" ] && [ "$expected" = "$received" ] && [ "$expected" != 0 ] \
            && python3 -c "import sys; sys.exit(0 if float('$p99') < $P99_LIMIT_MS else 1)"; then
            best=$dps
            best_rate=$rate
        else
            break
        fi
    done
    echo "$best" >"$WORK/$system-max.txt"
    echo "$best_rate" >"$WORK/$system-max-rate.txt"

    echo "   idle: $IDLE_CONNECTIONS websockets on one instance"
    run_loadtest "$WORK/$system-idle.json" idle --url "${urls[0]}" --server-pid "${pids[0]}" \
        --source-ips 127.0.0.1-127.0.0.8 --connections "$IDLE_CONNECTIONS" --hold 3s "${login[@]}"

    for pid in "${pids[@]}" "$redis_pid"; do kill "$pid" 2>/dev/null || true; done
    sleep 1
done

date=$(date -u +%Y-%m-%d)
mkdir -p bench/results
python3 - "$WORK" "$date" "${SYSTEMS[@]}" <<'PY'
import json, os, sys
work, date, systems = sys.argv[1], sys.argv[2], sys.argv[3:]
def load(name):
    try:
        return json.load(open(os.path.join(work, name)))
    except Exception:
        return {}
rows = {}
for s in systems:
    fixed, idle = load(f"{s}-fixed.json"), load(f"{s}-idle.json")
    mx = open(os.path.join(work, f"{s}-max.txt")).read().strip() or "0"
    lat = fixed.get("latency_ms", {})
    cpu = fixed.get("server_cpu_us_per_delivery")
    rows[s] = {
        "max_deliveries_per_sec": float(mx),
        "fixed_deliveries_per_sec": fixed.get("deliveries_per_sec"),
        "fixed_p50_ms": lat.get("p50"), "fixed_p99_ms": lat.get("p99"),
        "fixed_loss": (fixed.get("expected") or 0) - (fixed.get("received") or 0),
        "server_redis_cpu_us_per_delivery": cpu,
        "server_redis_cpu_s_per_million": cpu,  # µs per delivery == s per million deliveries
        "join_retries": fixed.get("join_retries"),
        "idle_rss_per_connection_bytes": idle.get("rss_per_connection_bytes"),
        "loadtest_cpu_us_per_delivery": fixed.get("loadtest_cpu_us_per_delivery"),
    }
def f(v, fmt="{:.1f}"):
    return "n/a" if v is None else fmt.format(v)
lines = [
    f"# Side-by-side benchmark ({date})",
    "",
    "`bench/compare.sh` on a 2-core machine: each system with its own Redis and 3 instances pinned to CPU 0,",
    "the load tester on CPU 1; 1500 users in rooms of 10 spread over the 3 instances, 64-byte messages.",
    "",
    "| system | max deliveries/s (p99 < 50 ms, no loss) | p50 / p99 ms at 2 msg/s/user | server+Redis CPU s per 1M deliveries | RSS per idle websocket | join retries |",
    "|---|---|---|---|---|---|",
]
for s, r in rows.items():
    rss = r["idle_rss_per_connection_bytes"]
    lines.append(
        f"| {s} | {r['max_deliveries_per_sec']:.0f} | {f(r['fixed_p50_ms'])} / {f(r['fixed_p99_ms'])} "
        f"| {f(r['server_redis_cpu_s_per_million'])} | {'n/a' if rss is None else f'{rss/1024:.1f} KiB'} "
        f"| {r['join_retries'] if r['join_retries'] is not None else 'n/a'} |")
if "ours" in rows:
    lines += ["", "Ratios (ours / peer): lower CPU is better, higher throughput is better.", ""]
    o = rows["ours"]
    for s, r in rows.items():
        if s == "ours":
            continue
        cpu = (o["server_redis_cpu_us_per_delivery"] / r["server_redis_cpu_us_per_delivery"]
               if o["server_redis_cpu_us_per_delivery"] and r["server_redis_cpu_us_per_delivery"] else None)
        thr = (o["max_deliveries_per_sec"] / r["max_deliveries_per_sec"]) if r["max_deliveries_per_sec"] else None
        lines.append(f"- vs {s}: CPU per delivery {f(cpu, '{:.2f}')}x, max throughput {f(thr, '{:.2f}')}x")
table = "\n".join(lines) + "\n"
print(table)
open(f"bench/results/compare-{date}.md", "w").write(table)
json.dump(rows, open(f"bench/results/compare-{date}.json", "w"), indent=2)
PY
