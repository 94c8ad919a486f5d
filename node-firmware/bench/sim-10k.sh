#!/usr/bin/env bash
# Load-generator benchmark: 10,000 simulated bays from one ctrl22-node-sim process against a
# local Mosquitto. Measures the heartbeat publish rate seen by a subscriber, and the
# simulator's CPU and memory over the measurement window. Results: node-firmware/BENCH.md.
#
# Usage: node-firmware/bench/sim-10k.sh [NODES] [HEARTBEAT_MS] [SECONDS]
# Needs: mosquitto, mosquitto_sub, mosquitto_pub, a release build:
#   cargo build --release -p ctrl22-node --features sim --bin ctrl22-node-sim
set -euo pipefail

NODES=${1:-10000}
HEARTBEAT_MS=${2:-1000}
SECONDS_MEASURED=${3:-30}
TARGET=${CARGO_TARGET_DIR:-target}
SIM=${SIM:-$TARGET/release/ctrl22-node-sim}
MOSQUITTO=${MOSQUITTO:-/usr/sbin/mosquitto}

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
WORK=$(mktemp -d)
cat > "$WORK/mosquitto.conf" <<CONF
listener $PORT 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 100000
max_inflight_messages 0
log_dest none
CONF

cleanup() {
    [[ -n "${SIM_PID:-}" ]] && kill "$SIM_PID" 2>/dev/null || true
    [[ -n "${BROKER_PID:-}" ]] && kill "$BROKER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

"$MOSQUITTO" -c "$WORK/mosquitto.conf" & BROKER_PID=$!
sleep 0.5
RUST_LOG=warn "$SIM" --broker "mqtt://127.0.0.1:$PORT" --nodes "$NODES" \
    --heartbeat "$HEARTBEAT_MS" --seed 1 --arrivals all-plugged & SIM_PID=$!
sleep 3

# Start a session on every bay: allocate 16 A, then press the button (broadcast).
mosquitto_pub -p "$PORT" -t '/DEMESH/*/control' -m '{"cmd":"avrsetpar","avrpar":"smaxcur","avrval":160}'
sleep 1
mosquitto_pub -p "$PORT" -t '/DEMESH/*/control' -m '{"cmd":"avrsetpar","avrpar":"opbutton","avrval":1}'
sleep 5

ticks() { awk '{print $14 + $15}' "/proc/$SIM_PID/stat"; }
HZ=$(getconf CLK_TCK)
T0=$(ticks); S0=$(date +%s.%N)
COUNT=$(timeout "$SECONDS_MEASURED" mosquitto_sub -p "$PORT" -t '/DEMESH/+/heartbeat' | wc -l || true)
T1=$(ticks); S1=$(date +%s.%N)
RSS_KB=$(awk '/VmRSS/ {print $2}' "/proc/$SIM_PID/status")
HWM_KB=$(awk '/VmHWM/ {print $2}' "/proc/$SIM_PID/status")
CHARGING=$(timeout 3 mosquitto_sub -p "$PORT" -t '/DEMESH/+/heartbeat' | grep -c '"ccss":3[0-3]' || true)

python3 - "$NODES" "$HEARTBEAT_MS" "$COUNT" "$T0" "$T1" "$HZ" "$S0" "$S1" "$RSS_KB" "$HWM_KB" "$CHARGING" <<'PY'
import sys
nodes, hb, count, t0, t1, hz, s0, s1, rss, hwm, charging = sys.argv[1:]
wall = float(s1) - float(s0)
cpu = (int(t1) - int(t0)) / int(hz) / wall * 100
print(f"bays={nodes} heartbeat={hb}ms window={wall:.1f}s")
print(f"heartbeats received: {count} = {int(count)/wall:.0f}/s (expected {int(nodes)*1000/int(hb):.0f}/s)")
print(f"simulator CPU: {cpu:.1f}% of one core; RSS {int(rss)/1024:.1f} MiB (peak {int(hwm)/1024:.1f} MiB)")
print(f"heartbeats with ccss 3x in a 3 s sample: {charging}")
PY
