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
# shellcheck source=bench/chat-setup.sh
source "$ROOT/bench/chat-setup.sh"

case $system in
    ours | ours-live) bin=$ROOT/target/release/gateway ;;
    socketioxide-redis) bin=$ROOT/bench/peers/socketioxide-redis/target/release/peer-socketioxide-redis ;;
    engine) bin=$ROOT/target/release/engine-chat ;;
    *) echo "unknown system $system" >&2; exit 1 ;;
esac
start_chat_servers "$system" "$bin"
first=${servers[0]}
start_chat_load "$rate" 30s
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
