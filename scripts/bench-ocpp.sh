#!/usr/bin/env bash
# OCPP sessions benchmark (BENCHMARKS.md "OCPP sessions"): N simulated bays (ctrl22-node-sim
# over Mosquitto) -> ctrl22-bridge (release) with `[ocpp]` on, one WebSocket session per bay
# (identity "{dev}") -> the npm central system (testkit/ocpp-peers/npm, ocpp-rpc in strict
# mode, --quiet: one stats line per interval instead of one line per message).
#
# Two runs of the same site, one after the other:
#   1. OCPP off: the bridge's steady-state CPU and RSS without sessions (the baseline);
#   2. OCPP on:  boot storm time (bridge started -> N BootNotifications accepted, read from
#      the central system's clock), then over the window: bridge CPU, RSS, and the messages
#      per second at the backend (CALLs from the bridge, frames both ways).
# RSS per session = (RSS with OCPP - RSS without) / N.
#
# Usage: scripts/bench-ocpp.sh [N]          (N bays, default 1000)
# Environment: WINDOW_S (60) measured window, SETTLE_S (15) wait before it, ARRIVALS (none:
# idle sessions; random: 40 % of the bays charge), OCPP_HEARTBEAT_S (10, the interval the
# central system gives in BootNotification.conf), SIM_HEARTBEAT_MS (1000), BOOT_TIMEOUT_S
# (300). Needs release builds in one target directory (CARGO_TARGET_DIR, default target):
#   cargo build --release -p ctrl22-bridge --bin ctrl22-bridge
#   cargo build --release -p ctrl22-node --features sim --bin ctrl22-node-sim
# BRIDGE=..., SIM=... override the binaries. Runs testkit/ocpp-peers/npm/setup.sh (npm ci).
set -euo pipefail
cd "$(dirname "$0")/.."

BAYS=${1:-1000}
WINDOW_S=${WINDOW_S:-60}
SETTLE_S=${SETTLE_S:-15}
ARRIVALS=${ARRIVALS:-none}
OCPP_HEARTBEAT_S=${OCPP_HEARTBEAT_S:-10}
SIM_HEARTBEAT_MS=${SIM_HEARTBEAT_MS:-1000}
BOOT_TIMEOUT_S=${BOOT_TIMEOUT_S:-300}
TARGET=${CARGO_TARGET_DIR:-target}
BRIDGE=${BRIDGE:-$TARGET/release/ctrl22-bridge}
SIM=${SIM:-$TARGET/release/ctrl22-node-sim}
MOSQUITTO=${MOSQUITTO:-/usr/sbin/mosquitto}
PEER=testkit/ocpp-peers/npm

for bin in "$BRIDGE" "$SIM" "$MOSQUITTO"; do
    [ -x "$bin" ] || { echo "missing $bin (see the build commands at the top of $0)" >&2; exit 2; }
done
"$PEER/setup.sh"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
HZ=$(getconf CLK_TCK)
WORK=$(mktemp -d)
PIDS=()

stop_all() {
    exec 3>&-
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
}
trap 'stop_all; rm -rf "$WORK"' EXIT

# The central system's latest stats line (kind "stats"), one field.
cs_stat() {
    python3 - "$WORK/cs.out" "$1" <<'PY'
import json, sys
last = None
with open(sys.argv[1]) as f:
    for line in f:
        try:
            j = json.loads(line)
        except ValueError:
            continue
        if j.get("kind") == "stats":
            last = j
print(0 if last is None or last.get(sys.argv[2]) is None else last[sys.argv[2]])
PY
}

# One site: broker, simulator, (central system,) bridge. $1 = true|false (OCPP on).
start_site() {
    local ocpp=$1 run=$WORK/$2
    mkdir -p "$run"
    local mqtt_port http_port
    mqtt_port=$(free_port)
    http_port=$(free_port)
    # The testkit's broker configuration (testkit/src/lib.rs) with a deeper client queue.
    cat > "$run/mosquitto.conf" <<CONF
listener $mqtt_port 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 100000
max_inflight_messages 0
log_dest none
CONF
    "$MOSQUITTO" -c "$run/mosquitto.conf" & PIDS+=($!)
    local ocpp_section="[ocpp]
enabled = false"
    if [ "$ocpp" = true ]; then
        # The peer exits when its stdin closes: hold it open on fd 3 until the end.
        mkfifo "$WORK/cs.in"
        node "$PEER/central_system.mjs" --port 0 --quiet --stats-ms 100 \
            --heartbeat "$OCPP_HEARTBEAT_S" < "$WORK/cs.in" > "$WORK/cs.out" 2> "$WORK/cs.err" &
        CS_PID=$!; PIDS+=("$CS_PID")
        exec 3> "$WORK/cs.in"
        local cs_port=""
        for _ in $(seq 100); do
            cs_port=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["port"])' "$WORK/cs.out" 2>/dev/null) && break
            sleep 0.1
        done
        [ -n "$cs_port" ] || { echo "central system did not start:" >&2; cat "$WORK/cs.err" >&2; exit 1; }
        ocpp_section="[ocpp]
enabled = true
url = \"ws://127.0.0.1:$cs_port\"
identity = \"{dev}\""
    fi
    cat > "$run/bridge.toml" <<CONF
[mqtt]
url = "mqtt://127.0.0.1:$mqtt_port"
client_id = "ctrl22-bridge-bench-ocpp"

[mesh]
transport = "mqtt"
mesh_id = "DEMESH"
heartbeat_timeout = "30s"
setpoint_refresh = "20s"

[site]
name = "bench"
voltage = 230
max_current = [3200, 3200, 3200]
strategy = "fair"
default_mode = "now"

[homeassistant]
enabled = false

$ocpp_section

[http]
listen = "127.0.0.1:$http_port"

[storage]
path = "$run/ctrl22.db"
CONF
    sleep 0.3
    RUST_LOG=warn "$SIM" --broker "mqtt://127.0.0.1:$mqtt_port" --nodes "$BAYS" \
        --heartbeat "$SIM_HEARTBEAT_MS" --seed 1 --arrivals "$ARRIVALS" > "$run/sim.log" 2>&1 & PIDS+=($!)
    sleep 1
    BRIDGE_START_MS=$(now_ms)
    RUST_LOG=${RUST_LOG:-warn} "$BRIDGE" run --config "$run/bridge.toml" 2> "$run/bridge.log" &
    BRIDGE_PID=$!; PIDS+=("$BRIDGE_PID")
}

# CPU (% of one core) of a process over the window, and its RSS at the end.
measure() {
    local pid=$1 t0 t1 w0 w1
    t0=$(ticks "$pid"); w0=$(now_ms)
    sleep "$WINDOW_S"
    t1=$(ticks "$pid"); w1=$(now_ms)
    python3 -c 'import sys; t0,t1,w0,w1,hz=map(int,sys.argv[1:]); print(f"{(t1-t0)/hz/((w1-w0)/1000)*100:.1f}")' \
        "$t0" "$t1" "$w0" "$w1" "$HZ"
}

echo "== bench-ocpp: $BAYS bays, arrivals=$ARRIVALS, OCPP heartbeat ${OCPP_HEARTBEAT_S}s, sim heartbeat ${SIM_HEARTBEAT_MS}ms, window ${WINDOW_S}s"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"

echo "-- run 1: OCPP off"
start_site false off
sleep "$SETTLE_S"
CPU_OFF=$(measure "$BRIDGE_PID")
RSS_OFF=$(rss_kb "$BRIDGE_PID")
echo "bridge cpu=${CPU_OFF}% rss=$((RSS_OFF / 1024)) MiB"
stop_all

echo "-- run 2: OCPP on"
start_site true on
deadline=$(( $(now_ms) + BOOT_TIMEOUT_S * 1000 ))
while [ "$(cs_stat boots)" -lt "$BAYS" ]; do
    if [ "$(now_ms)" -gt "$deadline" ]; then
        echo "only $(cs_stat boots) of $BAYS BootNotifications in ${BOOT_TIMEOUT_S}s; bridge log:" >&2
        grep -i 'warn\|error' "$WORK/on/bridge.log" | head -5 >&2 || true
        exit 1
    fi
    kill -0 "$BRIDGE_PID" 2>/dev/null || { echo "the bridge exited:" >&2; tail -5 "$WORK/on/bridge.log" >&2; exit 1; }
    sleep 0.2
done
FIRST_BOOT_MS=$(cs_stat first_boot_ms)
LAST_BOOT_MS=$(cs_stat last_boot_ms)
CONNECTS=$(cs_stat connects)
echo "boot storm: first BootNotification after $((FIRST_BOOT_MS - BRIDGE_START_MS)) ms," \
    "all $BAYS accepted after $((LAST_BOOT_MS - BRIDGE_START_MS)) ms (connections: $CONNECTS)"
sleep "$SETTLE_S"
CALLS0=$(cs_stat calls_in); FIN0=$(cs_stat frames_in); FOUT0=$(cs_stat frames_out); CS_T0=$(ticks "$CS_PID")
W0=$(now_ms)
CPU_ON=$(measure "$BRIDGE_PID")
W1=$(now_ms)
sleep 0.2   # one more stats line
CALLS1=$(cs_stat calls_in); FIN1=$(cs_stat frames_in); FOUT1=$(cs_stat frames_out); CS_T1=$(ticks "$CS_PID")
RSS_ON=$(rss_kb "$BRIDGE_PID")
HWM_ON=$(awk '/VmHWM/ {print $2}' "/proc/$BRIDGE_PID/status")
CS_RSS=$(rss_kb "$CS_PID")
python3 - <<PY
w = ($W1 - $W0) / 1000
print(f"bridge cpu=${CPU_ON}% rss={$RSS_ON/1024:.1f} MiB (peak {$HWM_ON/1024:.1f} MiB)")
print(f"rss per session: ({$RSS_ON} - {$RSS_OFF}) kB / $BAYS = {($RSS_ON - $RSS_OFF) / $BAYS:.1f} KiB")
print(f"cpu for OCPP: {${CPU_ON} - ${CPU_OFF}:.1f} % of one core")
print(f"backend: {($CALLS1 - $CALLS0) / w:.1f} CALLs/s from the bridge, "
      f"{($FIN1 - $FIN0) / w:.1f} frames/s in, {($FOUT1 - $FOUT0) / w:.1f} frames/s out; "
      f"central system cpu={($CS_T1 - $CS_T0) / $HZ / w * 100:.1f}% rss={$CS_RSS/1024:.1f} MiB")
PY
echo "connections during the window: $(cs_stat connects) (a reconnect would show here), schema violations: $(cs_stat invalid)"
echo "bridge log: $(grep -ci 'warn\|error' "$WORK/on/bridge.log" || true) warn/error lines; first ones:"
grep -i 'warn\|error' "$WORK/on/bridge.log" | head -3 || true
