#!/usr/bin/env bash
# A/B of one server binary at a time under compare.sh's chat load, for alternating builds by
# hand: Redis and 3 instances pinned to CPU 0, `loadtest chat --users 1500 --room-size 10` at
# RATE msg/s per user for 20 s on CPU 1. Prints the CPU of the instances and of Redis per
# 1M deliveries (from /proc over the middle 10 s), the latency and the loss; for ours, the
# ids the streams refused, the lines published after they were stored (the two-step path)
# and the lines spooled (history_id_refusals_total, history_published_after_store_total and
# history_spooled_total, summed over the instances), and the Redis commands per chat line
# (`INFO commandstats` over the whole run: calls and microseconds per line, busiest first;
# the microseconds are elapsed time, which on the core Redis shares with the instances
# includes their time slices when they preempt a call, so they are inflated near saturation).
# BINARY is our gateway, or the stock peer when TAG starts with "stock".
#
# Usage: bench/ab.sh BINARY TAG [RATE]   (after `cargo build --release -p gateway -p loadtest`)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$1 tag=$2 rate=${3:-2}
WORK=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
ticks() { local t=0 p; for p in "$@"; do set -- $(cut -d' ' -f14,15 "/proc/$p/stat"); t=$((t + $1 + $2)); done; echo "$t"; }
# shellcheck source=bench/chat-setup.sh
source "$ROOT/bench/chat-setup.sh"

system=ours
[ "$tag" = "${tag#stock}" ] || system=socketioxide-redis
start_chat_servers "$system" "$bin"
start_chat_load "$rate" 20s
sleep 8
s0=$(ticks "${servers[@]}") r0=$(ticks "$redis_pid") t0=$(date +%s.%N)
sleep 10
s1=$(ticks "${servers[@]}") r1=$(ticks "$redis_pid") t1=$(date +%s.%N)
wait "$load" || true
refused=0 after=0 spooled=0
for admin in "${admins[@]}"; do
    metrics=$(curl -fsS "127.0.0.1:$admin/metrics")
    n=$(awk '/^history_id_refusals_total /{print $2}' <<<"$metrics")
    a=$(awk '/^history_published_after_store_total /{print $2}' <<<"$metrics")
    m=$(awk '/^history_spooled_total /{print $2}' <<<"$metrics")
    refused=$((refused + ${n:-0})) after=$((after + ${a:-0})) spooled=$((spooled + ${m:-0}))
done
redis-cli -p "$redis_port" INFO commandstats | tr -d '\r' >"$WORK/commandstats"
python3 - "$tag" "$s0" "$s1" "$r0" "$r1" "$t0" "$t1" "$refused" "$after" "$spooled" "$WORK/loadtest.log" \
    "$WORK/commandstats" <<'PY'
import re, sys
tag, s0, s1, r0, r1, t0, t1, refused, after, spooled, log, stats = sys.argv[1:]
text = open(log).read()
dps = float(re.search(r"deliveries/s\s+(\S+)", text).group(1))
deliveries = dps * (float(t1) - float(t0))
hz = 100  # clock ticks per second in /proc/<pid>/stat
servers, redis = (int(s1) - int(s0)) / hz, (int(r1) - int(r0)) / hz
latency = re.search(r"latency ms\s+(.*)", text).group(1)
loss = re.search(r"deliveries\s+(\d+ expected.*)", text).group(1)
print(f"{tag}: {(servers + redis) / deliveries * 1e6:.1f} s CPU per 1M deliveries "
      f"(instances {servers / deliveries * 1e6:.1f}, Redis {redis / deliveries * 1e6:.1f}), "
      f"{dps:.0f} deliveries/s, ids refused {refused}, lines published after storing {after}, "
      f"lines spooled {spooled} | latency ms {latency} | {loss}")
# Every line reaches the 9 other members of its room of 10.
lines = int(re.search(r"(\d+) expected", text).group(1)) / 9
calls = []
for m in re.finditer(r"cmdstat_(\S+):calls=(\d+),usec=(\d+)", open(stats).read()):
    calls.append((int(m.group(3)), m.group(1), int(m.group(2))))
print(f"{tag}: Redis per line (calls, µs): " + ", ".join(
    f"{name} {n / lines:.2f} {usec / lines:.1f}" for usec, name, n in sorted(calls, reverse=True)[:6]))
PY
