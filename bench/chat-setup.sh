# Sourced by bench/ab.sh and bench/profile.sh: compare.sh's chat setup for one system, a
# Redis and 3 instances pinned to CPU 0 and `loadtest chat` (1500 users, rooms of 10) on
# CPU 1. The caller sets WORK (a scratch directory), ROOT (the repository) and pids (an
# array: everything started here is added to it, for the caller's cleanup). compare.sh
# sources it for free_port and start_ours only.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_ours BINARY PORT ADMIN_PORT REDIS_URL USERS_FILE [FLAG...]: our gateway as every
# benchmark runs it, in the background, pinned to CPU 0: one tokio worker, the bench
# account's users file, and every limit raised out of the run's way (sockets per user and per
# session, engine.io opens per address, logins, handshakes, messages, DMs: all simulated users
# share one account, one session and the loopback addresses), plus FLAGs; $! is its pid.
start_ours() {
    local bin=$1 port=$2 admin=$3 redis=$4 users=$5
    shift 5
    GATEWAY_MAX_SOCKETS_PER_USER=1000000 GATEWAY_MAX_SOCKETS_PER_SESSION=1000000 \
        GATEWAY_MAX_OPENS_PER_ADDRESS=1000000 taskset -c 0 "$bin" \
        --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" \
        --redis-url "$redis" --worker-threads 1 --users-file "$users" \
        --rate-login 1000000/60s --rate-handshake 1000000/60s --rate-message 1000000/60s \
        --rate-dm 1000000/60s "$@" &
}

# start_chat_servers SYSTEM BINARY: a Redis, then 3 instances of BINARY as SYSTEM (ours,
# ours-live: ours without history, socketioxide-redis, engine), pinned to CPU 0. Sets
# redis_port, redis_pid, servers (the instances' pids), urls, admins (ours' admin ports) and
# login (the loadtest's login flags: ours requires one, with limits raised out of the run's way).
start_chat_servers() {
    local system=$1 bin=$2 port admin history=()
    redis_port=$(free_port)
    taskset -c 0 redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
        --dir "$WORK" >/dev/null 2>&1 &
    redis_pid=$!
    pids+=("$redis_pid")
    sleep 0.3
    login=() servers=() urls=() admins=()
    case $system in
        ours | ours-live)
            printf 'bench-password\n' | "$bin" add-user --users-file "$WORK/users.json" \
                --username bench --tenant bench --name bench >/dev/null
            login=(--login bench:bench-password)
            [ "$system" = ours-live ] && history=(--no-history)
            ;;
        socketioxide-redis | engine) ;;
        *) echo "unknown system $system" >&2; exit 1 ;;
    esac
    for _ in 1 2 3; do
        port=$(free_port)
        case $system in
            ours | ours-live)
                admin=$(free_port)
                admins+=("$admin")
                start_ours "$bin" "$port" "$admin" "redis://127.0.0.1:$redis_port" \
                    "$WORK/users.json" "${history[@]}" >/dev/null 2>&1
                ;;
            socketioxide-redis)
                RUST_LOG=warn taskset -c 0 "$bin" --listen "127.0.0.1:$port" \
                    --redis-url "redis://127.0.0.1:$redis_port" --worker-threads 1 >/dev/null 2>&1 &
                ;;
            engine)
                taskset -c 0 "$bin" --listen "127.0.0.1:$port" \
                    --redis-url "redis://127.0.0.1:$redis_port" --worker-threads 1 >/dev/null 2>&1 &
                ;;
        esac
        pids+=($!) servers+=($!) urls+=("http://127.0.0.1:$port")
    done
    local url
    for url in "${urls[@]}"; do
        for _ in $(seq 100); do curl -fsS "$url/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
    done
}

# start_chat_load RATE DURATION: `loadtest chat` at RATE msg/s per user for DURATION against
# the instances, output in $WORK/loadtest.log; sets load (its pid).
start_chat_load() {
    local list
    list=$(IFS=,; echo "${urls[*]}")
    taskset -c 1 "$ROOT/target/release/loadtest" chat --url "$list" --users 1500 --room-size 10 \
        --rate "$1" --duration "$2" --source-ips 127.0.0.1-127.0.0.8 "${login[@]}" --no-progress \
        >"$WORK/loadtest.log" 2>&1 &
    load=$!
}
