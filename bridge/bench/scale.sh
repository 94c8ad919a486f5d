#!/usr/bin/env bash
# Scale benchmark of the bridge: N simulated bays (ctrl22-node-sim, random car arrivals,
# heartbeat every HEARTBEAT_MS) -> Mosquitto -> ctrl22-bridge (release, Home Assistant on).
# Measures on the wire, with bridge/examples/latency_probe.rs subscribed to /MESH/#:
#   - plug -> new setpoint: a heartbeat showing a car arrived/left -> the next smaxcur with a
#     new value to that bay;
#   - site-limit injection: PUT /api/v1/site lowers the limit at +25.4 s and restores it
#     at +42.7 s (off the 1 s control-cycle phase); time to the first and the last changed smaxcur, per-bay p50/p95;
# and over the same window the CPU (utime+stime from /proc/PID/stat) of the bridge, Mosquitto
# and the simulator, RSS / peak RSS of the bridge, message rates, and the bridge's own
# control-cycle time (ctrl22_control_cycle_seconds from /metrics). Results: bridge/BENCH.md.
#
# Usage: bridge/bench/scale.sh [BAYS] [HEARTBEAT_MS] [SECONDS] [WARMUP_SECONDS]
# Needs mosquitto, curl, python3 and release builds (same CARGO_TARGET_DIR):
#   cargo build --release -p ctrl22-bridge --bin ctrl22-bridge --example latency_probe
#   cargo build --release -p ctrl22-node --features sim --bin ctrl22-node-sim
# CHURN=N makes the probe send N cars a second away from charging bays (back 10 s later) over
# the simulator's simctl topic, for enough plug -> setpoint samples.
# SIM=... overrides the simulator binary; BRIDGE_WRAP="valgrind --tool=callgrind" etc. wraps
# the bridge (for profiling; the numbers are then not comparable).
set -euo pipefail

BAYS=${1:-1000}
HEARTBEAT_MS=${2:-1000}
SECONDS_MEASURED=${3:-60}
WARMUP=${4:-30}
LIMIT_A=${LIMIT_A:-3200}
LOWER_A=${LOWER_A:-1600}
TARGET=${CARGO_TARGET_DIR:-target}
BRIDGE=${BRIDGE:-$TARGET/release/ctrl22-bridge}
PROBE=${PROBE:-$TARGET/release/examples/latency_probe}
SIM=${SIM:-$TARGET/release/ctrl22-node-sim}
MOSQUITTO=${MOSQUITTO:-/usr/sbin/mosquitto}
BRIDGE_WRAP=${BRIDGE_WRAP:-}
HA=${HA:-true}   # HA=false leaves the Home Assistant adapter out
CHURN=${CHURN:-0}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MQTT_PORT=$(free_port)
HTTP_PORT=$(free_port)
TOKEN=bench-token
WORK=$(mktemp -d)

# The testkit's broker configuration (testkit/src/lib.rs) with a deeper client queue.
cat > "$WORK/mosquitto.conf" <<CONF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 100000
max_inflight_messages 0
log_dest none
CONF

cat > "$WORK/bridge.toml" <<CONF
[mqtt]
url = "mqtt://127.0.0.1:$MQTT_PORT"
client_id = "ctrl22-bridge-bench"

[mesh]
transport = "mqtt"
mesh_id = "DEMESH"
heartbeat_timeout = "30s"
setpoint_refresh = "20s"

[site]
name = "bench"
voltage = 230
max_current = [$LIMIT_A, $LIMIT_A, $LIMIT_A]
strategy = "fair"
default_mode = "now"

[homeassistant]
enabled = $HA

[http]
listen = "127.0.0.1:$HTTP_PORT"
token = "$TOKEN"

[storage]
path = "$WORK/ctrl22.db"
CONF

cleanup() {
    for pid in ${SIM_PID:-} ${BRIDGE_PID:-} ${BROKER_PID:-}; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

"$MOSQUITTO" -c "$WORK/mosquitto.conf" & BROKER_PID=$!
sleep 0.5
RUST_LOG=${RUST_LOG:-warn} $BRIDGE_WRAP "$BRIDGE" run --config "$WORK/bridge.toml" \
    2> "$WORK/bridge.log" & BRIDGE_PID=$!
sleep 1
RUST_LOG=warn "$SIM" --broker "mqtt://127.0.0.1:$MQTT_PORT" --nodes "$BAYS" \
    --heartbeat "$HEARTBEAT_MS" --seed 1 --arrivals random & SIM_PID=$!
sleep "$WARMUP"

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
cycle() { curl -s "http://127.0.0.1:$HTTP_PORT/metrics" | awk '/^ctrl22_control_cycle_seconds_(sum|count)/ {printf "%s ", $2}'; }
HZ=$(getconf CLK_TCK)
B0=$(ticks "$BRIDGE_PID"); M0=$(ticks "$BROKER_PID"); S0=$(ticks "$SIM_PID"); C0=$(cycle)
W0=$(date +%s.%N); L0=$(wc -l < "$WORK/bridge.log")
"$PROBE" --broker "127.0.0.1:$MQTT_PORT" --seconds "$SECONDS_MEASURED" \
    --http "127.0.0.1:$HTTP_PORT" --token "$TOKEN" --inject "25.4:$LOWER_A,42.7:$LIMIT_A" --churn "$CHURN" \
    > "$WORK/probe.out"
W1=$(date +%s.%N); L1=$(wc -l < "$WORK/bridge.log")
B1=$(ticks "$BRIDGE_PID"); M1=$(ticks "$BROKER_PID"); S1=$(ticks "$SIM_PID"); C1=$(cycle)
RSS_KB=$(awk '/VmRSS/ {print $2}' "/proc/$BRIDGE_PID/status")
HWM_KB=$(awk '/VmHWM/ {print $2}' "/proc/$BRIDGE_PID/status")
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

echo "bays=$BAYS heartbeat=${HEARTBEAT_MS}ms homeassistant=$HA warmup=${WARMUP}s limit=${LIMIT_A}A (lowered to ${LOWER_A}A at +25.4 s, restored at +42.7 s) load=$LOAD"
cat "$WORK/probe.out"
python3 - "$HZ" "$W0" "$W1" "$B0" "$B1" "$M0" "$M1" "$S0" "$S1" "$RSS_KB" "$HWM_KB" "$C0" "$C1" <<'PY'
import sys
hz, w0, w1, b0, b1, m0, m1, s0, s1, rss, hwm = sys.argv[1:12]
wall = float(w1) - float(w0)
pct = lambda a, b: (int(b) - int(a)) / int(hz) / wall * 100
print(f"cpu (% of one core over {wall:.1f} s): bridge={pct(b0, b1):.1f} mosquitto={pct(m0, m1):.1f} sim={pct(s0, s1):.1f}")
print(f"bridge rss={int(rss)/1024:.1f}MiB peak={int(hwm)/1024:.1f}MiB")
c0, c1 = sys.argv[12].split(), sys.argv[13].split()
if len(c0) == 2 and len(c1) == 2 and float(c1[1]) > float(c0[1]):
    n = float(c1[1]) - float(c0[1])
    print(f"control cycle (allocate+sequencer targets): mean={(float(c1[0]) - float(c0[0])) / n * 1000:.2f}ms over {n:.0f} cycles")
PY
echo "bridge log: $(grep -ci 'warn\|error' "$WORK/bridge.log" || true) warn/error lines in all," \
    "$(sed -n "$((L0 + 1)),${L1}p" "$WORK/bridge.log" | grep -ci 'warn\|error' || true) in the window; first ones:"
grep -i 'warn\|error' "$WORK/bridge.log" | head -2 || true
