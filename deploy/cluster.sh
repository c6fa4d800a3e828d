#!/usr/bin/env bash
# A gateway cluster on this machine's loopback, without Docker: one redis-server (append-only
# persistence), three gateway instances from the release build, and nginx in front of them.
#
#   deploy/cluster.sh [up]   build what is missing, start what is not running, print the URL
#   deploy/cluster.sh status each process and its health; exits non-zero if any is down
#   deploy/cluster.sh down   stop what `up` started (by recorded pid) and remove the pid files
#   deploy/cluster.sh secrets  make deploy/secrets/ only (docker-compose.yml needs it too)
#
# Environment (defaults in brackets):
#   NGINX_PORT [8080]  GATEWAY_PORTS [3001,3002,3003]  REDIS_PORT [6380]
#   ADMIN_PORTS [9091,9092,9093]  each gateway's operational listener (--admin-listen: /metrics,
#                   /api/stats, /api/cluster), on loopback and never behind nginx
#   USERS_FILE [none]  a users file (gateway add-user); without it the gateways are started
#                   with --demo-users: the DEMO directory, whose passwords are published
#   REDIS_MAXMEMORY [256mb]  Redis's memory limit (policy volatile-lru: see the README's
#                    "Memory pressure": only keys that expire are evicted)
#   CLUSTER_RUN_DIR [deploy/run]  pid files, logs, Redis data, the rendered nginx.conf
#   GATEWAY_BIN [the release build]  a gateway binary to run instead of building one
# Every process listens on 127.0.0.1 only.
set -euo pipefail

DEPLOY_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$DEPLOY_DIR")
WEB_MODULES_DIR=$REPO_DIR/gateway/web/node_modules # absolute: the gateways get it as a flag
NGINX_PORT=${NGINX_PORT:-8080}
GATEWAY_PORTS=${GATEWAY_PORTS:-3001,3002,3003}
ADMIN_PORTS=${ADMIN_PORTS:-9091,9092,9093}
USERS_FILE=${USERS_FILE:-}
REDIS_PORT=${REDIS_PORT:-6380}
REDIS_MAXMEMORY=${REDIS_MAXMEMORY:-256mb}
RUN_DIR=${CLUSTER_RUN_DIR:-$DEPLOY_DIR/run}
HOST=127.0.0.1
IFS=, read -r -a PORTS <<<"$GATEWAY_PORTS"
IFS=, read -r -a ADMIN <<<"$ADMIN_PORTS"

say() { printf '%s\n' "$*"; }
report() { printf '%-6s %s\n' "$1" "$2"; }
die() {
    printf 'cluster.sh: %s\n' "$*" >&2
    exit 1
}

usage() {
    say "usage: deploy/cluster.sh [up|status|down|secrets]"
}

# --- prerequisites -------------------------------------------------------------------------

# nginx lives in /usr/sbin, which an unprivileged user's PATH may lack.
find_nginx() {
    command -v nginx 2>/dev/null || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; } || true
}

# Installs the missing Debian packages when root, else names them and fails.
ensure_packages() {
    local missing=()
    command -v redis-server >/dev/null || missing+=(redis-server)
    command -v redis-cli >/dev/null || missing+=(redis-tools)
    [[ -n $(find_nginx) ]] || missing+=(nginx)
    command -v curl >/dev/null || missing+=(curl)
    if [[ ! -f $WEB_MODULES_DIR/socket.io-client/dist/socket.io.min.js ]]; then
        command -v node >/dev/null || missing+=(nodejs)
        command -v npm >/dev/null || missing+=(npm)
    fi
    ((${#missing[@]})) || return 0
    if [[ $(id -u) -ne 0 ]]; then
        die "missing programs; install the Debian packages: sudo apt-get install ${missing[*]}"
    fi
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}"
    # Debian's package may start a system nginx on port 80; ours is separate and untouched.
}

gateway_bin() {
    if [[ -n ${GATEWAY_BIN:-} ]]; then
        echo "$GATEWAY_BIN"
    else
        echo "${CARGO_TARGET_DIR:-$REPO_DIR/target}/release/gateway"
    fi
}

# Builds the release binary when it is missing or older than any source it is built from.
ensure_binary() {
    local bin
    bin=$(gateway_bin)
    if [[ -n ${GATEWAY_BIN:-} ]]; then
        [[ -x $bin ]] || die "GATEWAY_BIN=$bin is not an executable"
        return 0
    fi
    if [[ -x $bin ]] && [[ -z $(find "$REPO_DIR/Cargo.toml" "$REPO_DIR/Cargo.lock" \
        "$REPO_DIR/gateway" "$REPO_DIR/adapter" \( -path "$REPO_DIR/gateway/tests" \
        -o -path "$REPO_DIR/gateway/web/node_modules" \) -prune \
        -o -newer "$bin" -type f -print -quit) ]]; then
        return 0
    fi
    command -v cargo >/dev/null || die "cargo not found: install the Rust toolchain (rustup)"
    say "building the gateway (cargo build --release -p gateway)..."
    (cd "$REPO_DIR" && cargo build --release -p gateway)
}

# The chat page's browser client (socket.io-client, pinned by gateway/web/package-lock.json),
# which the gateways read from disk at run time.
ensure_web_modules() {
    [[ -f $WEB_MODULES_DIR/socket.io-client/dist/socket.io.min.js ]] && return 0
    say "installing the chat page's socket.io-client (npm ci in gateway/web)..."
    (cd "$REPO_DIR/gateway/web" && npm ci --no-audit --no-fund --loglevel=error)
}

# --- processes -----------------------------------------------------------------------------

pid_file() { echo "$RUN_DIR/$1.pid"; }
log_file() {
    case $1 in
    nginx) echo "$RUN_DIR/nginx-error.log" ;; # also named in nginx.conf.template
    *) echo "$RUN_DIR/$1.log" ;;
    esac
}

# What a running process of each component looks like: its name (/proc/PID/comm) and a
# string its command line contains.
expected_comm() {
    case $1 in
    redis) echo redis-server ;;
    nginx) echo nginx ;;
    gw*) basename "$(gateway_bin)" | cut -c1-15 ;; # the kernel keeps 15 characters
    esac
}
expected_cmdline() {
    case $1 in
    redis) echo "$HOST:$REDIS_PORT" ;;
    nginx) echo "$RUN_DIR/nginx.conf" ;;
    gw*) echo "--instance-id $1" ;;
    esac
}

# The recorded pid of component $1 if that process still runs and is what we started.
running_pid() {
    local name=$1 file pid comm cmdline
    file=$(pid_file "$name")
    [[ -f $file ]] || return 1
    pid=$(tr -dc '0-9' <"$file")
    [[ -n $pid && -d /proc/$pid ]] || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $comm == "$(expected_comm "$name")" && $cmdline == *"$(expected_cmdline "$name")"* ]] ||
        return 1
    echo "$pid"
}

# Removes a pid file whose process is gone or is not ours any more.
forget_stale() {
    local name=$1
    if [[ -f $(pid_file "$name") ]] && ! running_pid "$name" >/dev/null; then
        rm -f "$(pid_file "$name")"
    fi
}

# Polls `$@` every 100 ms for up to $1 seconds.
wait_for() {
    local seconds=$1 i
    shift
    for ((i = 0; i < seconds * 10; i++)); do
        if "$@"; then return 0; fi
        sleep 0.1
    done
    return 1
}

healthy() { curl -fsS --max-time 2 "http://$1/healthz" >/dev/null 2>&1; }
redis_ready() {
    REDISCLI_AUTH=$(cat "$SECRETS_DIR/redis-password") \
        redis-cli -h "$HOST" -p "$REDIS_PORT" --user gateway ping 2>/dev/null | grep -q PONG
}
port_busy() { (: >"/dev/tcp/$HOST/$1") 2>/dev/null; }

fail_with_log() {
    local name=$1
    say "--- last lines of $(log_file "$name"):" >&2
    tail -n 20 "$(log_file "$name")" >&2 || true
    die "$name did not start"
}

# The deployment's secrets, made once (mode 600) in deploy/secrets/ and shared by cluster.sh
# and docker-compose.yml: the password of Redis's only user `gateway` (the `default` user is
# off) and the cluster secret that seals every message between gateways.
# SECRETS_MODE (600: only this user, who runs Redis and the gateways here) is 644 for Docker,
# whose containers read them as their own users.
SECRETS_DIR=$DEPLOY_DIR/secrets
make_secrets() {
    local mode=${SECRETS_MODE:-600}
    mkdir -p "$SECRETS_DIR"
    local name
    for name in redis-password cluster-secret; do
        [ -s "$SECRETS_DIR/$name" ] && continue
        (umask 077 && head -c 32 /dev/urandom | base64 | tr -d '=+/\n' >"$SECRETS_DIR/$name")
        report secrets "made $SECRETS_DIR/$name"
    done
    (umask 077 && printf 'user default off\nuser gateway on >%s ~* &* +@all\n' \
        "$(cat "$SECRETS_DIR/redis-password")" >"$SECRETS_DIR/redis.acl")
    chmod "$mode" "$SECRETS_DIR"/redis-password "$SECRETS_DIR"/cluster-secret "$SECRETS_DIR"/redis.acl
}

start_redis() {
    if pid=$(running_pid redis); then
        report redis "already running (pid $pid)"
        return 0
    fi
    forget_stale redis
    port_busy "$REDIS_PORT" && die "port $HOST:$REDIS_PORT is taken (set REDIS_PORT)"
    mkdir -p "$RUN_DIR/redis"
    redis-server --bind "$HOST" --port "$REDIS_PORT" --protected-mode yes \
        --aclfile "$SECRETS_DIR/redis.acl" \
        --dir "$RUN_DIR/redis" --appendonly yes --save "" \
        --maxmemory "$REDIS_MAXMEMORY" --maxmemory-policy volatile-lru \
        --daemonize yes --pidfile "$(pid_file redis)" --logfile "$(log_file redis)"
    wait_for 10 redis_ready || fail_with_log redis
    wait_for 5 running_pid redis >/dev/null || fail_with_log redis
    report redis "started on $HOST:$REDIS_PORT (pid $(running_pid redis), data in $RUN_DIR/redis)"
}

start_gateway() {
    local name=$1 port=$2 admin=$3 pid
    if pid=$(running_pid "$name"); then
        report "$name" "already running (pid $pid)"
        return 0
    fi
    forget_stale "$name"
    port_busy "$port" && die "port $HOST:$port is taken (set GATEWAY_PORTS)"
    port_busy "$admin" && die "port $HOST:$admin is taken (set ADMIN_PORTS)"
    # The user directory: USERS_FILE, else the demo directory (said so by `up`).
    local users=(--demo-users)
    [[ -z $USERS_FILE ]] || users=(--users-file "$USERS_FILE")
    # setsid: its own session, so the terminal's hangup or Ctrl-C does not reach it.
    # --trusted-proxies: nginx, whose X-Forwarded-For is the client's address (it overwrites
    # what a client sent: deploy/nginx-proxy.conf).
    setsid "$(gateway_bin)" --listen "$HOST:$port" --admin-listen "$HOST:$admin" \
        --instance-id "$name" --redis-url "redis://$HOST:$REDIS_PORT" --trusted-proxies "$HOST" \
        --redis-user gateway --redis-password-file "$SECRETS_DIR/redis-password" \
        --cluster-secret-file "$SECRETS_DIR/cluster-secret" \
        "${users[@]}" --web-modules-dir "$WEB_MODULES_DIR" </dev/null >>"$(log_file "$name")" 2>&1 &
    echo $! >"$(pid_file "$name")"
    wait_for 15 healthy "$HOST:$port" || fail_with_log "$name"
    report "$name" "started on $HOST:$port (pid $(running_pid "$name"))"
}

render_nginx_conf() {
    local upstreams="" port
    for port in "${PORTS[@]}"; do
        upstreams+="        server $HOST:$port max_fails=1 fail_timeout=5s;"$'\n'
    done
    upstreams=${upstreams%$'\n'}
    local template
    template=$(<"$DEPLOY_DIR/nginx.conf.template")
    template=${template//@RUN_DIR@/$RUN_DIR}
    template=${template//@LISTEN@/$HOST:$NGINX_PORT}
    template=${template//@PROXY_CONF@/$DEPLOY_DIR/nginx-proxy.conf}
    template=${template//@UPSTREAMS@/$upstreams}
    printf '%s\n' "$template" >"$RUN_DIR/nginx.conf"
}


start_nginx() {
    local nginx pid
    nginx=$(find_nginx)
    if pid=$(running_pid nginx); then
        report nginx "already running (pid $pid)"
        return 0
    fi
    forget_stale nginx
    port_busy "$NGINX_PORT" && die "port $HOST:$NGINX_PORT is taken (set NGINX_PORT)"
    mkdir -p "$RUN_DIR/nginx-tmp"
    render_nginx_conf
    local args=(-p "$RUN_DIR/" -c "$RUN_DIR/nginx.conf" -e "$(log_file nginx)")
    "$nginx" "${args[@]}" -t -q || die "nginx rejects $RUN_DIR/nginx.conf"
    "$nginx" "${args[@]}" || fail_with_log nginx
    wait_for 10 healthy "$HOST:$NGINX_PORT" || fail_with_log nginx
    report nginx "started on $HOST:$NGINX_PORT (pid $(running_pid nginx))"
}

# Stops the components named after $1 by their recorded pids: SIGTERM to all of them at
# once, then SIGKILL to any still running after $1 seconds.
stop_components() {
    local grace=$1 name pid
    shift
    local -A pids=()
    for name in "$@"; do
        if pid=$(running_pid "$name"); then
            kill -TERM "$pid" 2>/dev/null || true
            pids[$name]=$pid
        elif [[ -f $(pid_file "$name") ]]; then
            rm -f "$(pid_file "$name")"
            report "$name" "not running (stale pid file removed)"
        fi
    done
    for name in "$@"; do
        [[ -n ${pids[$name]:-} ]] || continue
        pid=${pids[$name]}
        if ! wait_for "$grace" test ! -d "/proc/$pid"; then
            report "$name" "still running after ${grace}s, killing pid $pid"
            kill -KILL "$pid" 2>/dev/null || true
            wait_for 5 test ! -d "/proc/$pid" || die "$name (pid $pid) does not die"
        fi
        rm -f "$(pid_file "$name")"
        report "$name" "stopped (pid $pid)"
    done
}

# Fails before starting anything when a port of a component that is not running is taken.
check_ports() {
    local i
    running_pid redis >/dev/null || ! port_busy "$REDIS_PORT" ||
        die "port $HOST:$REDIS_PORT is taken (set REDIS_PORT)"
    for i in "${!PORTS[@]}"; do
        running_pid "gw$((i + 1))" >/dev/null || ! port_busy "${PORTS[$i]}" ||
            die "port $HOST:${PORTS[$i]} is taken (set GATEWAY_PORTS)"
        running_pid "gw$((i + 1))" >/dev/null || ! port_busy "${ADMIN[$i]:-0}" ||
            die "port $HOST:${ADMIN[$i]} is taken (set ADMIN_PORTS)"
    done
    running_pid nginx >/dev/null || ! port_busy "$NGINX_PORT" ||
        die "port $HOST:$NGINX_PORT is taken (set NGINX_PORT)"
}

gateway_names() {
    local i
    for i in "${!PORTS[@]}"; do echo "gw$((i + 1))"; done
}

# --- commands ------------------------------------------------------------------------------

cmd_up() {
    ensure_packages
    ensure_binary
    ensure_web_modules
    mkdir -p "$RUN_DIR"
    check_ports
    make_secrets
    start_redis
    local i
    for i in "${!PORTS[@]}"; do
        start_gateway "gw$((i + 1))" "${PORTS[$i]}" "${ADMIN[$i]:?ADMIN_PORTS needs one port per gateway}"
    done
    start_nginx
    say ""
    say "Gateway cluster up: http://$HOST:$NGINX_PORT  (${#PORTS[@]} instances behind nginx)"
    if [[ -n $USERS_FILE ]]; then
        say "Users from $USERS_FILE"
    else
        say "DEMO users (--demo-users: published passwords, never in production; set USERS_FILE):"
        say "  (tenant acme): alice / alice-demo (admin), bob / bob-demo"
        say "  (tenant globex): carol / carol-demo (admin), dave / dave-demo"
    fi
    say "  curl -s -X POST http://$HOST:$NGINX_PORT/api/login -H 'content-type: application/json' \\"
    say "       -d '{\"username\": \"alice\", \"password\": \"alice-demo\"}'"
    say "Metrics and cluster status (loopback only): http://$HOST:${ADMIN[0]}/metrics, /api/cluster"
    say "Logs and data: $RUN_DIR    status: deploy/cluster.sh status    stop: deploy/cluster.sh down"
}

# One status line: name, pid or "down", and the answer of the check `${@:2}`.
status_line() {
    local name=$1 pid health
    shift
    pid=$(running_pid "$name") || pid=""
    if [[ -z $pid ]]; then
        printf '%-6s %-8s %s\n' "$name" down "-"
        return 1
    fi
    if health=$("$@" 2>/dev/null); then
        printf '%-6s %-8s %s\n' "$name" "$pid" "$health"
    else
        printf '%-6s %-8s %s\n' "$name" "$pid" "UNHEALTHY"
        return 1
    fi
}

check_redis() { redis_ready && echo "PONG from $HOST:$REDIS_PORT"; }
check_health() {
    curl -fsS --max-time 2 "http://$1/healthz" >/dev/null && echo "healthz ok at $1"
}
# A gateway: its /healthz, and /api/cluster on its admin listener ($2).
check_gateway() {
    local body servers
    curl -fsS --max-time 2 "http://$1/healthz" >/dev/null || return 1
    body=$(curl -fsS --max-time 2 "http://$2/api/cluster") || return 1
    servers=$(grep -o '"servers":[0-9]*' <<<"$body" | cut -d: -f2)
    echo "healthz ok at $1, /api/cluster at $2: ${servers:-?} servers"
}

cmd_status() {
    local bad=0 i
    printf '%-6s %-8s %s\n' NAME PID HEALTH
    status_line redis check_redis || bad=1
    for i in "${!PORTS[@]}"; do
        status_line "gw$((i + 1))" check_gateway "$HOST:${PORTS[$i]}" "$HOST:${ADMIN[$i]:-}" || bad=1
    done
    status_line nginx check_health "$HOST:$NGINX_PORT" || bad=1
    if ((bad)); then
        say "some processes are down or unhealthy (logs in $RUN_DIR)"
        return 1
    fi
    say "all up: http://$HOST:$NGINX_PORT"
}

cmd_down() {
    local names
    mapfile -t names < <(gateway_names)
    stop_components 10 nginx
    # A gateway closes its sockets within its shutdown timeout (10 s by default).
    stop_components 15 "${names[@]}"
    stop_components 10 redis
}

main() {
    case ${1:-up} in
    up) cmd_up ;;
    status) cmd_status ;;
    down) cmd_down ;;
    secrets) make_secrets ;;
    -h | --help | help) usage ;;
    *)
        usage >&2
        exit 2
        ;;
    esac
}

main "$@"
