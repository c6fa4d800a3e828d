#!/usr/bin/env bash
# A short load test held to thresholds, as part of CI: a private Redis, three clustered
# gateways (debug builds, as `cargo test` left them), 150 users in rooms of 10 sending
# 2 messages/s each for 10 s. Fails on any lost delivery or a p99 above 250 ms.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cargo build --locked --quiet -p gateway -p loadtest
gateway=target/debug/gateway

redis_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no --dir "$work" \
    >"$work/redis.log" 2>&1 &
pids+=($!)

password=smoke-password
printf '%s\n' "$password" | "$gateway" add-user --users-file "$work/users.json" \
    --username smoke --tenant smoke --name smoke >/dev/null

urls=()
for _ in 1 2 3; do
    port=$(free_port)
    RUST_LOG=warn "$gateway" --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$(free_port)" \
        --redis-url "redis://127.0.0.1:$redis_port" \
        --users-file "$work/users.json" --rate-handshake 100000/60s --rate-message 100000/60s \
        >"$work/gateway-$port.log" 2>&1 &
    pids+=($!)
    urls+=("http://127.0.0.1:$port")
done
for url in "${urls[@]}"; do
    for _ in $(seq 1 100); do
        curl -fsS "$url/healthz" >/dev/null 2>&1 && break
        sleep 0.1
    done
done

target/debug/loadtest chat --url "$(IFS=,; echo "${urls[*]}")" --login "smoke:$password" \
    --users 150 --room-size 10 --rate 2 --duration 10s --no-progress \
    --max-p99 250 --max-loss 0
