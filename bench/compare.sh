#!/usr/bin/env bash
# Side-by-side benchmark of three Socket.IO stacks, each with its own Redis and its instances
# on loopback (a fresh cluster per group of steps), driven by the same `loadtest` steps:
#   ours                our gateway + redis-adapter (durable rooms: every message stored)
#   ours-live           the same with --no-history (live only), to measure what the store costs
#   socketioxide-redis  socketioxide 0.18 + the stock socketioxide-redis 0.4 adapter
#   node                socket.io 4.8 + @socket.io/redis-adapter 8.3 on ioredis
#   engine              the peers' chat protocol on our engine (bench/engine-chat on engine/,
#                       issue 14) over the engine's front end of the adapter's cluster bus;
#                       no accounts, no history (not in the default set)
# The system under test (its instances + Redis) is pinned to CPU 0 and the load tester to CPU 1.
#
# Steps (env STEPS, default all, in this order):
#   fixed   3 instances: 1500 users in rooms of 10 round-robin over them, 2 msg/s each
#   rates   3 instances: the same at rising rates, up to the last without loss and p99 < 50 ms
#   idle    3 instances: 10000 idle websockets on one instance, server RSS per connection
#   syscalls 3 instances: the fixed load again (at SYSCALLS_RATE msg/s per user, 2 by default)
#           for SYSCALLS_WINDOW while `perf stat` counts the
#           system calls of the instances and Redis (writes, reads, epoll waits, futex), per
#           delivery: how many kernel round trips each system makes for one delivery; and
#           Redis's own time per command (INFO commandstats) over the same window
#   floor   once, no server: bench/write-floor writes one frame at a time to 1500 loopback
#           connections at the fixed step's deliveries/s, pinned like the servers, and reports
#           its CPU per write: the floor under any server that writes each delivery itself
#   sparse  8 instances (one tokio worker each): rooms of 10 whose members sit 5/5 on 2 of the
#           8 (loadtest chat --instances-per-room 2), 800 users x 1 msg/s; CPU per delivery,
#           and the adapter messages each instance received and discarded (room not held)
#   burst   3 instances started with their bench endpoint: the first emits 100000 room
#           broadcasts back to back (POST /bench/burst), the 10 members sit on the other
#           two; the server's emitting time, the time until every member had everything
#   publish 3 instances: 1000 users in rooms of 10 round-robin over them; a publisher outside
#           the sockets publishes a `tick` to the rooms at each of PUBLISH_RATES per second
#           (loadtest publish): for ours through its HTTP publish API (POST /api/v1/publish,
#           with a key from `gateway api-key create`), and, when the gateway binary has the
#           emitter flag ($EMITTER_FLAG), also through the official @socket.io/redis-emitter
#           (row "ours-emitter"); for node through the emitter, which its redis-adapter reads
#           natively. socketioxide-redis has no publisher here (n/a). Latency from the publish
#           call to receipt, loss, publishes/s accepted, refusals by status, CPU per delivery
#
# Usage: bench/compare.sh [system ...]      (default: all three)
#        STEPS="sparse burst" bench/compare.sh   (only these steps, e.g. to re-run them)
# Env:   FIXED_DURATION (20s) STEP_DURATION (10s) IDLE_CONNECTIONS (10000) RATES ("0.5 1 2 3 4 5 6 8 12")
#        SPARSE_USERS (800) SPARSE_RATE (1) SPARSE_DURATION (20s) BURST_COUNT (100000)
#        BURST_MEMBERS (10) BURST_MAX_WAIT (60s)
#        PUBLISH_RATES ("200 1000") PUBLISH_USERS (1000) PUBLISH_ROOM_SIZE (10)
#        PUBLISH_DURATION (20s) PUBLISH_MAX_IN_FLIGHT (64) EMITTER_FLAG (--emitter-key)
#        SYSCALLS_WINDOW (10) SYSCALLS_RATE (2)
# Writes bench/results/compare-<date>.md and .json (compare-<date>-<steps>.* when STEPS is not
# every step), and prints the table.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

FIXED_DURATION=${FIXED_DURATION:-20s}
STEP_DURATION=${STEP_DURATION:-10s}
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-10000}
RATES=${RATES:-"0.5 1 2 3 4 5 6 8 12"}
ALL_STEPS="fixed rates idle syscalls floor sparse burst publish"
STEPS=${STEPS:-$ALL_STEPS}
USERS=1500
ROOM_SIZE=10
P99_LIMIT_MS=50
# Sparse rooms: a rate every system sustains without loss on 8 instances sharing CPU 0.
SPARSE_INSTANCES=8
SPARSE_SPAN=2
SPARSE_USERS=${SPARSE_USERS:-800}
SPARSE_RATE=${SPARSE_RATE:-1}
SPARSE_DURATION=${SPARSE_DURATION:-20s}
BURST_INSTANCES=3
BURST_COUNT=${BURST_COUNT:-100000}
BURST_MEMBERS=${BURST_MEMBERS:-10}
BURST_MAX_WAIT=${BURST_MAX_WAIT:-60s}
PUBLISH_INSTANCES=3
PUBLISH_RATES=${PUBLISH_RATES:-"200 1000"}
PUBLISH_USERS=${PUBLISH_USERS:-1000}
PUBLISH_ROOM_SIZE=${PUBLISH_ROOM_SIZE:-10}
PUBLISH_DURATION=${PUBLISH_DURATION:-20s}
PUBLISH_MAX_IN_FLIGHT=${PUBLISH_MAX_IN_FLIGHT:-64}
SYSCALLS_WINDOW=${SYSCALLS_WINDOW:-10}
SYSCALLS_RATE=${SYSCALLS_RATE:-2}
# A delivery's websocket frame at the fixed step (`42["message",{...}]`, 64-byte text), bytes.
FLOOR_FRAME_BYTES=${FLOOR_FRAME_BYTES:-250}
# The gateway flag that makes it read the official Redis emitter (its value: the emitter's key).
EMITTER_FLAG=${EMITTER_FLAG:---emitter-key}
EMITTER_KEY=socket.io
SYSTEMS=("$@")
[ ${#SYSTEMS[@]} -gt 0 ] || SYSTEMS=(ours socketioxide-redis node)
for step in $STEPS; do
    case " $ALL_STEPS " in *" $step "*) ;; *) echo "unknown step $step (steps: $ALL_STEPS)" >&2; exit 1 ;; esac
done
has_step() { case " $STEPS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

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
need redis-cli redis-tools
need node nodejs
need taskset util-linux
need python3 python3
need curl curl
has_step syscalls && need perf linux-perf

echo "== building (release)"
cargo build --release --quiet -p gateway -p loadtest -p engine-chat -p write-floor
cargo build --release --quiet --manifest-path bench/peers/socketioxide-redis/Cargo.toml
(cd bench/peers/node && npm ci --no-audit --no-fund --loglevel=error)
LOADTEST=$ROOT/target/release/loadtest

# Our gateway requires a login when clustered: one bench account, every simulated user logs
# in with it (one session, shared as the tabs of one browser share theirs). Limits are raised
# so they never throttle the run, but every message still costs its rate-limit check in Redis.
# The per-socket event budget keeps
# its default (every event still pays its in-process check); the caps on sockets per user and
# per session and on engine.io opens per address are raised through their env names (a build
# without the caps ignores them), as every simulated user shares the one session and the one
# loopback address.
BENCH_PASSWORD=bench-password
printf '%s\n' "$BENCH_PASSWORD" | "$ROOT/target/release/gateway" add-user \
    --users-file "$WORK/users.json" --username bench --tenant bench --name bench >/dev/null
UNLIMITED=1000000/60s

# gateway_has FLAG: whether our gateway binary takes FLAG (read from its --help at run time, so
# the step works before and after the publish API and the emitter reader land)
gateway_has() {
    "$ROOT/target/release/gateway" --help 2>/dev/null | grep -qE -- "(^|[[:space:]])$1([[:space:]]|=|\$)"
}

# free_port, and start_ours: our gateway as every benchmark starts it (limits raised)
# shellcheck source=bench/chat-setup.sh
source "$ROOT/bench/chat-setup.sh"

wait_http() {
    for _ in $(seq 1 100); do
        curl -fsS "$1/healthz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "no answer from $1" >&2
    return 1
}

# is_ours SYSTEM: whether SYSTEM is our gateway (with or without history)
is_ours() { [ "$1" = ours ] || [ "$1" = ours-live ]; }

# start_instance SYSTEM PORT ADMIN_PORT REDIS_URL [bench|publish] -> prints the pid; ours
# serves /metrics on ADMIN_PORT; with `bench`, the system's benchmark endpoint
# (POST /bench/burst) is enabled; with `publish`, ours gets its publish API's per-key rate
# raised and reads the emitter, where the binary has those flags
start_instance() {
    local system=$1 port=$2 admin=$3 redis=$4 mode=${5:-}
    local flags=()
    [ "$mode" = bench ] && flags=(--bench-endpoints)
    case $system in
        ours | ours-live)
            [ "$system" = ours-live ] && flags+=(--no-history)
            if [ "$mode" = publish ]; then
                gateway_has --api-publish-rate && flags+=(--api-publish-rate $UNLIMITED)
                gateway_has "$EMITTER_FLAG" && flags+=("$EMITTER_FLAG" "$EMITTER_KEY")
            fi
            # The admin listener (/metrics, read by adapter_snapshot).
            start_ours "$ROOT/target/release/gateway" "$port" "$admin" "$redis" \
                "$WORK/users.json" --log-format json "${flags[@]}" >"$WORK/$system-$port.log" 2>&1
            ;;
        socketioxide-redis)
            RUST_LOG=warn taskset -c $SUT_CPU \
                "$ROOT/bench/peers/socketioxide-redis/target/release/peer-socketioxide-redis" \
                --listen "127.0.0.1:$port" --redis-url "$redis" --worker-threads 1 \
                "${flags[@]}" >"$WORK/$system-$port.log" 2>&1 &
            ;;
        engine)
            taskset -c $SUT_CPU "$ROOT/target/release/engine-chat" --listen "127.0.0.1:$port" \
                --redis-url "$redis" --worker-threads 1 >"$WORK/$system-$port.log" 2>&1 &
            ;;
        node)
            taskset -c $SUT_CPU node "$ROOT/bench/peers/node/server.mjs" --port "$port" \
                --redis-url "$redis" "${flags[@]}" >"$WORK/$system-$port.log" 2>&1 &
            ;;
    esac
    echo $!
}

# start_cluster SYSTEM INSTANCES [bench|publish]: a Redis of its own and INSTANCES instances, pinned to
# the system's CPU. Sets redis_port, redis_pid, urls, admin_urls, pids, url_list, pid_list (instances and
# Redis) and common (the loadtest flags every step shares).
start_cluster() {
    local system=$1 instances=$2 mode=${3:-}
    redis_port=$(free_port)
    taskset -c $SUT_CPU redis-server --bind 127.0.0.1 --port "$redis_port" --save "" \
        --appendonly no --dir "$WORK" >"$WORK/redis-$system-$redis_port.log" 2>&1 &
    redis_pid=$!
    PIDS+=("$redis_pid")
    sleep 0.3
    urls=()
    admin_urls=()
    pids=()
    local port admin pid url
    for _ in $(seq 1 "$instances"); do
        port=$(free_port)
        # A port of its own, free now: port + 1000 could be some earlier step's client port.
        admin=$(free_port)
        pid=$(start_instance "$system" "$port" "$admin" "redis://127.0.0.1:$redis_port" "$mode")
        PIDS+=("$pid")
        pids+=("$pid")
        urls+=("http://127.0.0.1:$port")
        admin_urls+=("http://127.0.0.1:$admin")
    done
    for url in "${urls[@]}"; do wait_http "$url"; done
    sleep 1
    url_list=$(IFS=,; echo "${urls[*]}")
    pid_list=$(IFS=,; echo "${pids[*]},$redis_pid")
    common=(--url "$url_list" --server-pid "$pid_list" --source-ips 127.0.0.1-127.0.0.8)
    common+=("${login[@]}")
}

stop_cluster() {
    for pid in "${pids[@]}" "$redis_pid"; do kill "$pid" 2>/dev/null || true; done
    sleep 1
}

rcli() { redis-cli -h 127.0.0.1 -p "$redis_port" "$@" | tr -d '\r'; }

# adapter_snapshot SYSTEM FILE: the adapter traffic counters, `key value` per line. Redis's
# PUBLISH calls for every system; for ours also each instance's adapter counters from /metrics
# (an absent counter is written without a value).
adapter_snapshot() {
    local system=$1 file=$2 i=0 url
    {
        echo "publish $(rcli INFO commandstats | sed -n 's/^cmdstat_publish:calls=\([0-9]*\),.*/\1/p')"
        if is_ours "$system"; then
            for url in "${admin_urls[@]}"; do
                curl -fsS --max-time 5 "$url/metrics" >"$WORK/metrics.txt" 2>/dev/null || : >"$WORK/metrics.txt"
                echo "received_$i $(awk '$1 == "redis_adapter_received_total" {print $2; exit}' "$WORK/metrics.txt")"
                echo "discarded_$i $(awk '$1 == "redis_adapter_room_messages_discarded_total" {print $2; exit}' "$WORK/metrics.txt")"
                i=$((i + 1))
            done
        fi
    } >"$file"
}

# subscribers SYSTEM: how many Redis subscriptions receive each room broadcast of the peers,
# which put every broadcast on channels every instance listens to:
#   socketioxide-redis  PUBLISH on "socket.io-request#/#" (socketioxide-redis 0.4, lib.rs:
#                       `{prefix}-request#{namespace}#`), every instance SUBSCRIBEd to it
#   node                PUBLISH on "socket.io#/#<room>#" (@socket.io/redis-adapter 8.3,
#                       dist/index.js broadcast()), every instance PSUBSCRIBEd to
#                       "socket.io#/#*": counted as the clients holding a pattern
#                       subscription (PUBSUB NUMPAT counts distinct patterns, not clients)
subscribers() {
    case $1 in
        socketioxide-redis) rcli PUBSUB NUMSUB 'socket.io-request#/#' | sed -n 2p ;;
        node) rcli CLIENT LIST | grep -c ' psub=[1-9]' || true ;;
        *) echo "" ;;
    esac
}

# The system calls the syscalls step counts, by group (the summary sums each group).
SYSCALL_EVENTS=()
for call in write writev sendto sendmsg read readv recvfrom recvmsg epoll_wait epoll_pwait futex; do
    SYSCALL_EVENTS+=(-e "syscalls:sys_enter_$call")
done

# loadtest SCENARIO JSON ARGS... : run pinned to the load CPU; never fails the script
run_loadtest() {
    local json=$1
    shift
    taskset -c $LOAD_CPU "$LOADTEST" "$@" --no-progress --json "$json" >"$json.log" 2>&1 || true
}

jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); v=d
for k in sys.argv[2].split("."): v=v.get(k) if isinstance(v,dict) else None
print("" if v is None else v)' "$1" "$2" 2>/dev/null || true; }

# jnum FILE KEY [DIGITS]: a number of a JSON report rounded to DIGITS (0) decimals, or n/a
jnum() {
    local v
    v=$(jget "$1" "$2")
    if [ -n "$v" ]; then printf "%.${3:-0}f" "$v"; else echo n/a; fi
}

for system in "${SYSTEMS[@]}"; do
    echo "== $system"
    login=()
    is_ours "$system" && login=(--login "bench:$BENCH_PASSWORD")

    if has_step fixed || has_step rates || has_step idle || has_step syscalls; then
        start_cluster "$system" 3
        if has_step fixed; then
            echo "   fixed load: $USERS users, rooms of $ROOM_SIZE, 2 msg/s each, $FIXED_DURATION"
            run_loadtest "$WORK/$system-fixed.json" chat "${common[@]}" --users $USERS \
                --room-size $ROOM_SIZE --rate 2 --duration "$FIXED_DURATION"
        fi

        if has_step rates; then
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
        fi

        if has_step idle; then
            echo "   idle: $IDLE_CONNECTIONS websockets on one instance"
            run_loadtest "$WORK/$system-idle.json" idle --url "${urls[0]}" --server-pid "${pids[0]}" \
                --source-ips 127.0.0.1-127.0.0.8 --connections "$IDLE_CONNECTIONS" --hold 3s "${login[@]}"
        fi

        if has_step syscalls; then
            echo "   syscalls: the fixed load at $SYSCALLS_RATE msg/s per user, perf stat on the instances and Redis for ${SYSCALLS_WINDOW}s"
            run_loadtest "$WORK/$system-syscalls.json" chat "${common[@]}" --users $USERS \
                --room-size $ROOM_SIZE --rate "$SYSCALLS_RATE" --duration "$((SYSCALLS_WINDOW + 8))s" &
            load=$!
            sleep 5
            rcli INFO commandstats >"$WORK/$system-commands-before.txt"
            perf stat -x, -o "$WORK/$system-syscalls.txt" -p "$pid_list" "${SYSCALL_EVENTS[@]}" \
                -- sleep "$SYSCALLS_WINDOW" >/dev/null 2>&1 || echo "   syscalls: perf stat failed"
            rcli INFO commandstats >"$WORK/$system-commands-after.txt"
            wait "$load" || true
        fi
        stop_cluster
    fi

    if has_step sparse; then
        echo "   sparse rooms: $SPARSE_INSTANCES instances, rooms of $ROOM_SIZE on $SPARSE_SPAN of them, $SPARSE_USERS users, $SPARSE_RATE msg/s each, $SPARSE_DURATION"
        start_cluster "$system" $SPARSE_INSTANCES
        adapter_snapshot "$system" "$WORK/$system-sparse-before.txt"
        run_loadtest "$WORK/$system-sparse.json" chat "${common[@]}" --users "$SPARSE_USERS" \
            --room-size $ROOM_SIZE --rate "$SPARSE_RATE" --duration "$SPARSE_DURATION" \
            --instances-per-room $SPARSE_SPAN --settle 5s
        adapter_snapshot "$system" "$WORK/$system-sparse-after.txt"
        echo "subscribers $(subscribers "$system")" >>"$WORK/$system-sparse-after.txt"
        python3 - "$WORK" "$system" $SPARSE_INSTANCES $SPARSE_SPAN <<'PY'
# Adapter messages received and discarded (room not held by the receiving instance) during
# the sparse step, per instance, into <system>-sparse-adapter.json. The snapshots bracket the
# whole loadtest run: connecting, joining, sending and settling.
#   ours: each instance's own counters (/metrics deltas): redis_adapter_received_total
#         (every message it got from Redis: room broadcasts, its own coming back, heartbeats,
#         and the cluster-wide room-size requests and answers of every `join`) and
#         redis_adapter_room_messages_discarded_total ("n/a" while the adapter lacks it).
#   peers: from Redis. Every PUBLISH in the window is a room broadcast (the chat publishes
#         nothing else; neither peer adapter sends heartbeats) and reaches the S subscriptions
#         counted by `subscribers` (one per instance), so received = P x S in all. Each room's
#         members sit on exactly SPAN instances (--instances-per-room), each of them among the
#         S, so of the S copies of a publish exactly SPAN reach an instance holding the room
#         (the sender's own instance, which skips its own message, and the other holder) and
#         S - SPAN reach instances that hold none of its members: discarded = P x (S - SPAN).
#         Per instance: the totals / instances (rooms are spread evenly over the instances).
import json, os, sys
work, system, instances, span = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def read(name):
    values = {}
    try:
        for line in open(os.path.join(work, name)):
            key, _, value = line.strip().partition(" ")
            values[key] = float(value) if value else None
    except OSError:
        pass
    return values
before, after = read(f"{system}-sparse-before.txt"), read(f"{system}-sparse-after.txt")
def delta(key):
    a, b = after.get(key), before.get(key)
    return None if a is None else a - (b or 0)
publishes = delta("publish")
out = {"instances": instances, "instances_per_room": span, "redis_publishes": publishes}
if system in ("ours", "ours-live"):
    received = [delta(f"received_{i}") for i in range(instances)]
    discarded = [delta(f"discarded_{i}") for i in range(instances)]
    out["method"] = "each instance's /metrics"
    out["received_per_instance"] = received
    out["discarded_per_instance"] = discarded
    known = [v for v in received if v is not None]
    out["received_per_instance_mean"] = sum(known) / len(known) if known else None
    known = [v for v in discarded if v is not None]
    out["discarded_per_instance_mean"] = sum(known) / len(known) if len(known) == instances else None
else:
    subs = after.get("subscribers")
    out["method"] = "Redis: PUBLISH calls x subscribers, discarded from the placement"
    out["subscribers"] = subs
    if publishes is not None and subs:
        out["received_per_instance_mean"] = publishes * subs / instances
        out["discarded_per_instance_mean"] = publishes * max(subs - span, 0) / instances
    else:
        out["received_per_instance_mean"] = out["discarded_per_instance_mean"] = None
json.dump(out, open(os.path.join(work, f"{system}-sparse-adapter.json"), "w"), indent=2)
PY
        json="$WORK/$system-sparse.json"
        adapter="$WORK/$system-sparse-adapter.json"
        echo "   sparse: $(jnum "$json" deliveries_per_sec) deliveries/s, p99 $(jnum "$json" latency_ms.p99 1) ms, loss $(jnum "$json" loss), server+Redis $(jnum "$json" server_cpu_us_per_delivery 1) µs/delivery; adapter messages per instance: received $(jnum "$adapter" received_per_instance_mean), discarded $(jnum "$adapter" discarded_per_instance_mean)"
        stop_cluster
    fi

    if has_step burst && [ "$system" = engine ]; then
        echo "   burst: skipped (engine-chat has no bench endpoint)"
    elif has_step burst; then
        echo "   burst: $BURST_COUNT broadcasts from the first of $BURST_INSTANCES instances to $BURST_MEMBERS members on the others"
        start_cluster "$system" $BURST_INSTANCES bench
        tenant=()
        is_ours "$system" && tenant=(--tenant bench)
        members=$(IFS=,; echo "${urls[*]:1}")
        run_loadtest "$WORK/$system-burst.json" burst --url "$members" --trigger "${urls[0]}" \
            --server-pid "$pid_list" --count "$BURST_COUNT" --members "$BURST_MEMBERS" \
            --max-wait "$BURST_MAX_WAIT" "${tenant[@]}" "${login[@]}"
        json="$WORK/$system-burst.json"
        echo "   burst: emitting loop $(jnum "$json" burst.emit_ms) ms (server), all received after $(jnum "$json" burst.all_received_ms) ms (last delivery $(jnum "$json" burst.last_delivery_ms) ms), received $(jnum "$json" received)/$(jnum "$json" expected), out of order $(jnum "$json" out_of_order)"
        stop_cluster
    fi

    if has_step publish; then
        echo "   publish: $PUBLISH_USERS users in rooms of $PUBLISH_ROOM_SIZE on $PUBLISH_INSTANCES instances, at $PUBLISH_RATES publishes/s, $PUBLISH_DURATION each"
        start_cluster "$system" $PUBLISH_INSTANCES publish
        redis_url="redis://127.0.0.1:$redis_port"
        # The rows this system gets, each "ROW VIA [ROOM_TEMPLATE]".
        publishers=()
        key=""
        case $system in
            ours | ours-live)
                # The key's first line alone is the key (`gateway api-key create`).
                key=$("$ROOT/target/release/gateway" api-key create --tenant bench --name bench \
                    --events '*' --redis-url "$redis_url" 2>"$WORK/$system-api-key.log" | head -n1) || key=""
                if [ -n "$key" ]; then
                    publishers+=("$system http")
                else
                    echo "   publish: no API key ($(head -c 200 "$WORK/$system-api-key.log")): no HTTP publish row for $system"
                fi
                if gateway_has "$EMITTER_FLAG"; then
                    publishers+=("$system-emitter emitter t:bench:r:{room}")
                else
                    echo "   publish: the gateway has no $EMITTER_FLAG: no emitter row for $system"
                fi
                ;;
            node) publishers+=("$system emitter {room}") ;;
            *) echo "   publish: no publisher for $system (n/a)" ;;
        esac
        for publisher in "${publishers[@]}"; do
            read -r row via template <<<"$publisher"
            for rate in $PUBLISH_RATES; do
                json="$WORK/$row-publish-$rate.json"
                args=(publish "${common[@]}" --users "$PUBLISH_USERS" --room-size "$PUBLISH_ROOM_SIZE"
                    --rate "$rate" --duration "$PUBLISH_DURATION" --via "$via")
                if [ "$via" = http ]; then
                    args+=(--max-in-flight "$PUBLISH_MAX_IN_FLIGHT")
                else
                    args+=(--redis-url "$redis_url" --room-template "$template" --emitter-key "$EMITTER_KEY")
                fi
                # The key goes through the environment, not the command line.
                if [ "$via" = http ]; then
                    LOADTEST_API_KEY=$key run_loadtest "$json" "${args[@]}"
                else
                    run_loadtest "$json" "${args[@]}"
                fi
                echo "   publish $row ($via) at $rate/s: $(jnum "$json" publish.publishes_per_sec) accepted/s, p50 $(jnum "$json" latency_ms.p50 1) / p99 $(jnum "$json" latency_ms.p99 1) ms, loss $(jnum "$json" loss), refused $(jget "$json" publish.failures), server+Redis $(jnum "$json" server_cpu_us_per_delivery 1) ms per 1,000 deliveries"
            done
        done
        stop_cluster
    fi
done

if has_step floor; then
    rate=$((USERS * 2 * (ROOM_SIZE - 1)))
    echo "== floor: one $FLOOR_FRAME_BYTES-byte write at a time to $USERS loopback connections, $rate/s, $FIXED_DURATION"
    port=$(free_port)
    taskset -c $SUT_CPU "$ROOT/target/release/write-floor" serve --listen "127.0.0.1:$port" \
        --connections $USERS --rate $rate --duration "$FIXED_DURATION" \
        --frame-bytes "$FLOOR_FRAME_BYTES" --json "$WORK/floor.json" &
    writer=$!
    PIDS+=("$writer")
    taskset -c $LOAD_CPU "$ROOT/target/release/write-floor" read --connect "127.0.0.1:$port" \
        --connections $USERS >/dev/null || echo "   floor: the reader failed"
    wait "$writer" || echo "   floor: the writer failed"
fi

date=$(date -u +%Y-%m-%d)
suffix=""
[ "$STEPS" = "$ALL_STEPS" ] || suffix="-$(echo $STEPS | tr ' ' '-')"
mkdir -p bench/results
export SPARSE_INSTANCES SPARSE_SPAN SPARSE_USERS SPARSE_RATE SPARSE_DURATION BURST_COUNT BURST_MEMBERS
export PUBLISH_INSTANCES PUBLISH_RATES PUBLISH_USERS PUBLISH_ROOM_SIZE PUBLISH_DURATION
export SYSCALLS_WINDOW SYSCALLS_RATE FLOOR_FRAME_BYTES USERS FIXED_DURATION
python3 - "$WORK" "$date" "$suffix" "$STEPS" "${SYSTEMS[@]}" <<'PY'
import json, os, sys
work, date, suffix, steps, systems = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(), sys.argv[5:]
env = os.environ
def load(name):
    try:
        return json.load(open(os.path.join(work, name)))
    except Exception:
        return {}
def text(name):
    try:
        return open(os.path.join(work, name)).read().strip()
    except OSError:
        return ""
def loss(report):
    return None if not report else (report.get("expected") or 0) - (report.get("received") or 0)
rows = {}
for s in systems:
    row = {}
    if {"fixed", "rates", "idle"} & set(steps):
        fixed, idle = load(f"{s}-fixed.json"), load(f"{s}-idle.json")
        lat = fixed.get("latency_ms", {})
        cpu = fixed.get("server_cpu_us_per_delivery")
        row.update({
            "max_deliveries_per_sec": float(text(f"{s}-max.txt") or 0) if "rates" in steps else None,
            "fixed_deliveries_per_sec": fixed.get("deliveries_per_sec"),
            "fixed_p50_ms": lat.get("p50"), "fixed_p99_ms": lat.get("p99"),
            "fixed_loss": loss(fixed),
            "server_redis_cpu_us_per_delivery": cpu,
            "server_redis_cpu_s_per_million": cpu,  # µs per delivery == s per million deliveries
            "join_retries": fixed.get("join_retries"),
            "idle_rss_per_connection_bytes": idle.get("rss_per_connection_bytes"),
            "loadtest_cpu_us_per_delivery": fixed.get("loadtest_cpu_us_per_delivery"),
        })
    if "syscalls" in steps:
        # perf stat -x, lines: count,unit,event,...; deliveries in the window from the load's rate.
        counts = {}
        for line in text(f"{s}-syscalls.txt").splitlines():
            fields = line.split(",")
            if len(fields) > 2 and fields[0].strip().isdigit():
                counts[fields[2].removeprefix("syscalls:sys_enter_")] = int(fields[0])
        dps = load(f"{s}-syscalls.json").get("deliveries_per_sec")
        deliveries = dps * float(env.get("SYSCALLS_WINDOW", "10")) if dps else None
        groups = {"writes": ["write", "writev", "sendto", "sendmsg"],
                  "reads": ["read", "readv", "recvfrom", "recvmsg"],
                  "epoll_waits": ["epoll_wait", "epoll_pwait"], "futex": ["futex"]}
        per = {g: (sum(counts.get(c, 0) for c in calls) / deliveries if deliveries and counts else None)
               for g, calls in groups.items()}
        row["syscalls_per_delivery"] = dict(per, counts=counts, deliveries=deliveries)
        # INFO commandstats lines: cmdstat_NAME:calls=N,usec=U,...; the window's deltas.
        def commandstats(name):
            stats = {}
            for line in text(name).splitlines():
                head, _, fields = line.partition(":")
                if head.startswith("cmdstat_"):
                    values = dict(f.split("=", 1) for f in fields.split(",") if "=" in f)
                    stats[head.removeprefix("cmdstat_")] = (int(values.get("calls", 0)), int(values.get("usec", 0)))
            return stats
        before, after = commandstats(f"{s}-commands-before.txt"), commandstats(f"{s}-commands-after.txt")
        commands = {c: (calls - before.get(c, (0, 0))[0], usec - before.get(c, (0, 0))[1])
                    for c, (calls, usec) in after.items()}
        row["redis_commands"] = {c: {"calls": n, "usec": u, "usec_per_delivery": u / deliveries if deliveries else None}
                                 for c, (n, u) in commands.items() if n > 0}
    if "sparse" in steps:
        sparse, adapter = load(f"{s}-sparse.json"), load(f"{s}-sparse-adapter.json")
        lat = sparse.get("latency_ms", {})
        row["sparse"] = {
            "deliveries_per_sec": sparse.get("deliveries_per_sec"),
            "p50_ms": lat.get("p50"), "p99_ms": lat.get("p99"),
            "loss": loss(sparse),
            "server_redis_cpu_us_per_delivery": sparse.get("server_cpu_us_per_delivery"),
            "adapter": adapter,
        }
    if "burst" in steps:
        burst = load(f"{s}-burst.json")
        b = burst.get("burst") or {}
        ooo = b.get("out_of_order_per_member") or []
        row["burst"] = {
            "count": b.get("count"), "emitted": b.get("emitted"), "failed": b.get("failed"),
            "emit_ms": b.get("emit_ms"), "all_received_ms": b.get("all_received_ms"),
            "last_delivery_ms": b.get("last_delivery_ms"),
            "deliveries": burst.get("received"), "expected": burst.get("expected"),
            "loss": loss(burst), "duplicates": burst.get("duplicates"),
            "out_of_order": burst.get("out_of_order"), "out_of_order_per_member": ooo,
            "server_redis_cpu_us_per_delivery": burst.get("server_cpu_us_per_delivery"),
        }
    if "publish" in steps:
        # One entry per publisher row of this system (ours: http, then ours-emitter) and rate.
        names = [s] + ([f"{s}-emitter"] if s in ("ours", "ours-live") else [])
        row["publish"] = []
        for name in names:
            for rate in env.get("PUBLISH_RATES", "").split():
                report = load(f"{name}-publish-{rate}.json")
                if not report:
                    continue
                p = report.get("publish") or {}
                lat = report.get("latency_ms", {})
                row["publish"].append({
                    "row": name, "via": p.get("via"), "rate": float(rate),
                    "publishes_per_sec": p.get("publishes_per_sec"), "accepted": p.get("accepted"),
                    "attempted": p.get("attempted"), "failures": p.get("failures"),
                    "deliveries_per_sec": report.get("deliveries_per_sec"),
                    "p50_ms": lat.get("p50"), "p99_ms": lat.get("p99"), "max_ms": lat.get("max"),
                    "expected": report.get("expected"), "received": report.get("received"),
                    "loss": loss(report), "duplicates": report.get("duplicates"),
                    "out_of_order": report.get("out_of_order"),
                    "server_redis_cpu_ms_per_1000_deliveries": report.get("server_cpu_us_per_delivery"),
                })
    rows[s] = row
def f(v, fmt="{:.1f}"):
    return "n/a" if v is None else fmt.format(v)
def ratio(a, b):
    return a / b if a and b else None
lines = [f"# Side-by-side benchmark ({date})", ""]
if {"fixed", "rates", "idle"} & set(steps):
    lines += [
        "`bench/compare.sh` on a 2-core machine: each system with its own Redis and 3 instances pinned to CPU 0,",
        "the load tester on CPU 1; 1500 users in rooms of 10 spread over the 3 instances, 64-byte messages.",
        "",
        "| system | max deliveries/s (p99 < 50 ms, no loss) | p50 / p99 ms at 2 msg/s/user | server+Redis CPU s per 1M deliveries | RSS per idle websocket | join retries |",
        "|---|---|---|---|---|---|",
    ]
    for s, r in rows.items():
        rss = r["idle_rss_per_connection_bytes"]
        lines.append(
            f"| {s} | {f(r['max_deliveries_per_sec'], '{:.0f}')} | {f(r['fixed_p50_ms'])} / {f(r['fixed_p99_ms'])} "
            f"| {f(r['server_redis_cpu_s_per_million'])} | {'n/a' if rss is None else f'{rss/1024:.1f} KiB'} "
            f"| {r['join_retries'] if r['join_retries'] is not None else 'n/a'} |")
    if "ours" in rows:
        lines += ["", "Ratios (ours / peer): lower CPU is better, higher throughput is better.", ""]
        o = rows["ours"]
        for s, r in rows.items():
            if s == "ours":
                continue
            cpu = ratio(o["server_redis_cpu_us_per_delivery"], r["server_redis_cpu_us_per_delivery"])
            thr = ratio(o["max_deliveries_per_sec"], r["max_deliveries_per_sec"])
            lines.append(f"- vs {s}: CPU per delivery {f(cpu, '{:.2f}')}x, max throughput {f(thr, '{:.2f}')}x")
        live = rows.get("ours-live")
        cpu_on, cpu_off = o["server_redis_cpu_us_per_delivery"], (live or {}).get("server_redis_cpu_us_per_delivery")
        if cpu_on is not None and cpu_off:
            lines += ["", f"Durability (ours, every message stored, vs ours-live, --no-history): the store costs "
                      f"{100 * (cpu_on - cpu_off) / cpu_on:.1f}% of the CPU per delivery at rooms of 10."]
    lines.append("")
if {"syscalls", "floor"} & set(steps):
    lines += ["## Where the CPU goes", ""]
if "syscalls" in steps:
    lines += [
        f"System calls of the 3 instances and Redis per delivery: `perf stat` for {env.get('SYSCALLS_WINDOW', '10')} s "
        f"of the fixed load (1500 users, rooms of 10, {env.get('SYSCALLS_RATE', '2')} msg/s each). Writes: write, writev, sendto, sendmsg; "
        "reads: read, readv, recvfrom, recvmsg.",
        "",
        "Redis: the three commands it spent the most time in (INFO commandstats, this step's own INFO left out): "
        "µs per call x calls per delivery. The time is elapsed time inside Redis, which shares its core with the instances "
        "here, so it includes time Redis was preempted; a script's time includes the commands it calls, listed on their own too.",
        "",
        "| system | writes | reads | epoll waits | futex | costliest Redis commands |",
        "|---|---|---|---|---|---|",
    ]
    for s, r in rows.items():
        sc = r.get("syscalls_per_delivery") or {}
        commands = {name: c for name, c in (r.get("redis_commands") or {}).items() if name != "info"}
        top = sorted(commands.items(), key=lambda item: -item[1]["usec"])[:3]
        deliveries = sc.get("deliveries")
        costliest = ", ".join(
            f"{name} {c['usec'] / c['calls']:.1f} µs x {f(c['calls'] / deliveries if deliveries else None, '{:.3f}')}"
            for name, c in top) or "n/a"
        lines.append(f"| {s} | {f(sc.get('writes'), '{:.2f}')} | {f(sc.get('reads'), '{:.2f}')} "
                     f"| {f(sc.get('epoll_waits'), '{:.2f}')} | {f(sc.get('futex'), '{:.2f}')} | {costliest} |")
    lines.append("")
if "floor" in steps:
    floor = load("floor.json")
    us = floor.get("cpu_us_per_write")
    users = int(env.get("USERS", "1500"))
    lines += [
        f"Floor (`bench/write-floor`, this run): {f(us, '{:.2f}')} µs of CPU per loopback write of a "
        f"{env.get('FLOOR_FRAME_BYTES', '250')}-byte frame, one frame per write to {users} connections in turn "
        f"at the fixed step's deliveries/s for {env.get('FIXED_DURATION', '20s')}, the writer alone on CPU 0 and "
        f"its reader on CPU 1 ({floor.get('writes', 'n/a')} writes, {floor.get('would_block', 'n/a')} refused by a full buffer). "
        "On loopback the writer pays the receiver's TCP path and its wake-up too: a server that writes each "
        "delivery to its member's connection spends at least this per delivery, before reading or routing anything.",
        "",
    ]
    stock = (rows.get("socketioxide-redis") or {}).get("server_redis_cpu_us_per_delivery")
    if us and stock:
        lines += [f"- 0.5x the stock stack's CPU per delivery in this run is {stock / 2:.1f} µs: "
                  f"{stock / 2 / us:.2f} loopback writes' worth.", ""]
    for s, r in rows.items():
        sc = (r.get("syscalls_per_delivery") or {}).get("writes")
        cpu = r.get("server_redis_cpu_us_per_delivery")
        if us and sc and cpu:
            lines.append(f"- {s}: {sc:.2f} writes per delivery x {us:.2f} µs = {sc * us:.1f} µs of its "
                         f"{cpu:.1f} µs per delivery ({100 * sc * us / cpu:.0f}%)")
    lines.append("")
if "sparse" in steps:
    lines += [
        "## Sparse rooms",
        "",
        f"{env.get('SPARSE_INSTANCES', '8')} instances (one tokio worker each for the Rust ones) and one Redis on CPU 0; "
        f"{env.get('SPARSE_USERS', '800')} users at {env.get('SPARSE_RATE', '1')} msg/s each for {env.get('SPARSE_DURATION', '20s')}, "
        f"rooms of 10 whose members sit 5/5 on {env.get('SPARSE_SPAN', '2')} consecutive instances "
        "(`loadtest chat --instances-per-room`). Adapter messages: ours from each instance's `/metrics` "
        "(`redis_adapter_received_total`, `redis_adapter_room_messages_discarded_total`; heartbeats, own echoes and the "
        "cluster-wide room-size checks of the joins included), over the whole run from the first connection; "
        "the peers from Redis (PUBLISH calls × subscribers; discarded = the copies reaching instances that hold none of the room's members).",
        "",
        "| system | deliveries/s | p50 / p99 ms | loss | server+Redis CPU µs per delivery | adapter messages received per instance | of which discarded (room not held) |",
        "|---|---|---|---|---|---|---|",
    ]
    for s, r in rows.items():
        sp = r["sparse"]
        a = sp["adapter"] or {}
        rec, dis = a.get("received_per_instance_mean"), a.get("discarded_per_instance_mean")
        share = f" ({100 * dis / rec:.0f}%)" if rec and dis is not None else ""
        lines.append(
            f"| {s} | {f(sp['deliveries_per_sec'], '{:.0f}')} | {f(sp['p50_ms'])} / {f(sp['p99_ms'])} | {f(sp['loss'], '{}')} "
            f"| {f(sp['server_redis_cpu_us_per_delivery'])} | {f(rec, '{:.0f}')} | {f(dis, '{:.0f}')}{share} |")
    lines.append("")
if "burst" in steps:
    lines += [
        "## Burst",
        "",
        f"3 instances and one Redis on CPU 0; the first instance emits {env.get('BURST_COUNT', '100000')} room broadcasts back to back "
        "(`POST /bench/burst`: `io.to(room).emit(..).await` in Rust, `io.to(room).emit(..)` in Node, which returns at once), "
        f"the room's {env.get('BURST_MEMBERS', '10')} members sit on the other two (`loadtest burst`). "
        "Emitting: the server's own measure of its loop. All received: from the trigger request to the last member's last broadcast "
        "(n/a when some were lost); last delivery: from the trigger request to the last delivery, complete or not.",
        "",
        "| system | emitting s | emits/s | all received s | last delivery s | deliveries | loss | out of order (max per member) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s, r in rows.items():
        b = r["burst"]
        emit_s = b["emit_ms"] / 1000 if b["emit_ms"] is not None else None
        rate = b["emitted"] / emit_s if emit_s and b["emitted"] else None
        all_s = b["all_received_ms"] / 1000 if b["all_received_ms"] is not None else None
        last_s = b["last_delivery_ms"] / 1000 if b["last_delivery_ms"] is not None else None
        ooo = b["out_of_order_per_member"]
        lines.append(
            f"| {s} | {f(emit_s, '{:.2f}')} | {f(rate, '{:.0f}')} | {f(all_s, '{:.2f}')} | {f(last_s, '{:.2f}')} "
            f"| {f(b['deliveries'], '{}')} | {f(b['loss'], '{}')} | {f(b['out_of_order'], '{}')} ({max(ooo) if ooo else 'n/a'}) |")
    if "ours" in rows:
        lines += ["", "Ratios (peer / ours): higher is better for ours.", ""]
        o = rows["ours"]["burst"]
        for s, r in rows.items():
            if s == "ours":
                continue
            lines.append(
                f"- vs {s}: emitting {f(ratio(r['burst']['emit_ms'], o['emit_ms']), '{:.2f}')}x faster, "
                f"all received {f(ratio(r['burst']['all_received_ms'], o['all_received_ms']), '{:.2f}')}x sooner")
    lines.append("")
if "publish" in steps:
    lines += [
        "## Publish",
        "",
        f"{env.get('PUBLISH_INSTANCES', '3')} instances and one Redis on CPU 0, the load tester and its publisher on CPU 1; "
        f"{env.get('PUBLISH_USERS', '1000')} users in rooms of {env.get('PUBLISH_ROOM_SIZE', '10')} round-robin over the instances; "
        f"a publisher outside the sockets publishes a `tick` to the rooms in turn for {env.get('PUBLISH_DURATION', '20s')} "
        "at each rate (`loadtest publish`). http: our gateway's `POST /api/v1/publish` from the load tester (one keep-alive "
        "client, bounded requests in flight); emitter: the official `@socket.io/redis-emitter` in a Node script publishing "
        "to the system's Redis. Latency: from the publish call to receipt, on the wall clock both processes share. "
        "Publishes/s: accepted ones (HTTP 2xx, or PUBLISH answered by Redis) per second of publishing. "
        "CPU: the instances' and Redis's, not the publisher's.",
        "",
        "| system | publisher | publishes/s asked | publishes/s accepted | refused (by status) | deliveries/s | p50 / p99 ms | loss | server+Redis CPU ms per 1,000 deliveries |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s, r in rows.items():
        entries = r.get("publish") or []
        if not entries:
            lines.append(f"| {s} | n/a | | | | | | | |")
        for e in entries:
            refused = ", ".join(f"{k} {v}" for k, v in (e["failures"] or {}).items()) or "0"
            lines.append(
                f"| {e['row']} | {e['via'] or 'n/a'} | {f(e['rate'], '{:g}')} | {f(e['publishes_per_sec'])} | {refused} "
                f"| {f(e['deliveries_per_sec'], '{:.0f}')} | {f(e['p50_ms'])} / {f(e['p99_ms'])} | {f(e['loss'], '{}')} "
                f"| {f(e['server_redis_cpu_ms_per_1000_deliveries'], '{:.2f}')} |")
    lines.append("")
if "floor" in steps:
    rows["write-floor"] = load("floor.json")
table = "\n".join(lines)
print(table)
open(f"bench/results/compare-{date}{suffix}.md", "w").write(table)
json.dump(rows, open(f"bench/results/compare-{date}{suffix}.json", "w"), indent=2)
PY
