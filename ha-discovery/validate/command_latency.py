"""How long a Home Assistant command takes to come back as state while the bridge announces
every bay (at start and after `homeassistant/status` = `online`).

    target/release/ctrl22-bridge demo --nodes 10000 --mqtt-listen 127.0.0.1:18830 &
    $HA_VENV/bin/python ha-discovery/validate/command_latency.py 127.0.0.1 18830 60

It sets one bay's `max_current_a` to 10 or 11 A (alternately), waits (up to 10 s) for the
bay's state to show it, then 0.5 s, then again; at 5 s it sends Home Assistant's birth message. It prints the
latencies (min, median, max) and how many discovery configs arrived meanwhile. Needs only
paho-mqtt (1.6, as in the Home Assistant venv).
"""

import statistics
import sys
import threading
import time

import paho.mqtt.client as mqtt

host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
site = sys.argv[4] if len(sys.argv) > 4 else "demo"

lock = threading.Lock()
configs = 0
dev = None
waiting = None  # (value, sent_at)
latencies = []
missed = 0
waiting_done = 0.0
TIMEOUT_S = 10.0


def on_message(_client, _userdata, msg):
    global configs, dev, waiting, waiting_done
    now = time.monotonic()
    with lock:
        if msg.topic.startswith("homeassistant/") and msg.topic.endswith("/config"):
            configs += 1
            if dev is None and "/ctrl22_" in msg.topic and "_site_" not in msg.topic:
                dev = msg.topic.split("/ctrl22_")[1].split("/")[0]
                client.subscribe(f"ctrl22/{site}/node/{dev}/state", 1)
        elif waiting and msg.topic.endswith(f"/node/{dev}/state") and msg.payload:
            if f'"max_current_a":{waiting[0]}.0' in msg.payload.decode():
                latencies.append(now - waiting[1])
                waiting = None
                waiting_done = now


client = mqtt.Client(client_id="ctrl22-latency")
client.on_message = on_message
client.connect(host, port)
client.subscribe("homeassistant/#", 1)
client.loop_start()

start = time.monotonic()
born = False
value = 10
while time.monotonic() - start < seconds:
    time.sleep(0.05)
    with lock:
        if dev is None:
            continue
        if waiting is not None:
            if time.monotonic() - waiting[1] < TIMEOUT_S:
                continue
            missed += 1
        elif latencies and time.monotonic() - waiting_done < 0.5:
            continue
        if not born and time.monotonic() - start > 5:
            client.publish("homeassistant/status", "online")
            born = True
        value = 21 - value
        waiting = (value, time.monotonic())
    client.publish(f"ctrl22/{site}/node/{dev}/set/max_current_a", str(value), qos=1)

client.loop_stop()
if latencies:
    ms = sorted(1000 * x for x in latencies)
    print(
        f"{len(ms)} answered, {missed} not within {TIMEOUT_S:.0f} s; latency ms min {ms[0]:.0f} "
        f"median {statistics.median(ms):.0f} max {ms[-1]:.0f}; {configs} discovery configs seen"
    )
else:
    print(f"no answer at all; {configs} discovery configs seen")
