#!/usr/bin/env python3
"""Live check: per-entity discovery into a real Home Assistant (the venv's release) over a
private mosquitto, then read the entities back and drive them.

Usage (from a neutral directory, with the Home Assistant venv's python):
    live_check.py discovery-entity.jsonl

Starts mosquitto and hass on free local ports in a temporary directory, onboards a user,
adds the MQTT integration, publishes the discovery messages, availability and one sample
state per device, and checks:
- every entity appears under the entity id its object_id asks for;
- sample values arrive with the right units and device classes;
- service calls publish the documented command payloads on the documented topics;
- a bay whose node goes offline turns unavailable except its `online` sensor.
The sample states use exactly the fields the discovery templates read (checked first).
Exit status 1 on any failure. Device-based discovery needs 2024.11+ and is not run here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import paho.mqtt.client as mqtt

BAY_STATE = {
    "state": "charging",
    "current_l1_a": 15.9,
    "current_l2_a": 16.0,
    "current_l3_a": 15.8,
    "power_w": 7360,
    "session_energy_kwh": 4.25,
    "total_energy_kwh": 1234.5,
    "allocated_current_a": 16.0,
    "cable_capacity_a": 32,
    "plugged": True,
    "charging": True,
    "problem": False,
    "online": True,
    "mode": "pv",
    "max_current_a": 16,
    "enabled": True,
    "departure_time": "07:30",
    "target_energy_kwh": 20.0,
    "rssi_dbm": -67,
    "mesh_layer": 2,
    "mesh_parent": "d8:a0:1d:55:a5:6c",
    "fw_version": "3.5",
    "fw_latest": "3.6",
    "fw_update_in_progress": False,
    "fw_update_percent": None,
    "fw_release_summary": "image demesh_agccs12_3_6.bin",
    "avr_version": "1.3",
    "ccss": "C3",
}
SITE_STATE = {
    "grid_power_w": 1200,
    "pv_power_w": 6400,
    "surplus_w": 0,
    "ev_power_w": 7360,
    "current_l1_a": 27.1,
    "current_l2_a": 26.0,
    "current_l3_a": 25.2,
    "limit_l1_a": 32,
    "limit_l2_a": 32,
    "limit_l3_a": 32,
    "strategy": "fair",
    "solar_ok": True,
    "ev_energy_kwh": 5321.0,
}
FIELD = re.compile(r"value_json\.([a-z0-9_]+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Ha:
    def __init__(self, base: str) -> None:
        self.base = base
        self.token = ""

    def call(self, method: str, path: str, body: Any = None, form: bool = False) -> tuple[int, Any]:
        headers = {}
        data = None
        if body is not None:
            if form:
                data = urllib.parse.urlencode(body).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                text = r.read().decode()
                return r.status, json.loads(text) if text else None
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except (urllib.error.URLError, ConnectionError):
            return 0, None

    def onboard(self, broker_port: int) -> None:
        client_id = self.base + "/"
        st, res = self.call("POST", "/api/onboarding/users", {
            "client_id": client_id, "name": "Check", "username": "check",
            "password": "check-password-1", "language": "en"})
        assert st == 200, (st, res)
        st, tok = self.call("POST", "/auth/token", {
            "grant_type": "authorization_code", "code": res["auth_code"],
            "client_id": client_id}, form=True)
        assert st == 200, (st, tok)
        self.token = tok["access_token"]
        st, flow = self.call("POST", "/api/config/config_entries/flow",
                             {"handler": "mqtt", "show_advanced_options": False})
        assert st == 200, (st, flow)
        st, res = self.call("POST", f"/api/config/config_entries/flow/{flow['flow_id']}",
                            {"broker": "127.0.0.1", "port": broker_port})
        assert st == 200 and res.get("type") == "create_entry", (st, res)

    def states(self) -> dict[str, dict[str, Any]]:
        st, res = self.call("GET", "/api/states")
        return {s["entity_id"]: s for s in res} if st == 200 else {}

    def devices(self) -> list[dict[str, Any]]:
        """The device registry, over the websocket API (REST has no endpoint for it)."""
        import asyncio

        import aiohttp

        async def fetch() -> list[dict[str, Any]]:
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(self.base.replace("http", "ws") + "/api/websocket") as ws:
                    await ws.receive_json()
                    await ws.send_json({"type": "auth", "access_token": self.token})
                    await ws.receive_json()
                    await ws.send_json({"id": 1, "type": "config/device_registry/list"})
                    return (await ws.receive_json())["result"]

        return asyncio.run(fetch())

    def service(self, domain: str, name: str, data: dict[str, Any]) -> None:
        st, res = self.call("POST", f"/api/services/{domain}/{name}", data)
        assert st == 200, (domain, name, st, res)


def wait_for(what: str, check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def main() -> int:
    messages = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8") if line.strip()]
    failures: list[str] = []

    def expect(cond: bool, msg: str) -> None:
        print(("ok   " if cond else "FAIL ") + msg)
        if not cond:
            failures.append(msg)

    # The samples carry exactly the fields the templates read.
    read = {
        topic_fields
        for m in messages
        for key in ("value_template", "latest_version_template")
        for topic_fields in FIELD.findall(m["payload"].get(key, ""))
    }
    expect(read == set(BAY_STATE) | set(SITE_STATE),
           f"sample states cover exactly the template fields (diff {read ^ (set(BAY_STATE) | set(SITE_STATE))})")

    work = tempfile.mkdtemp(prefix="ctrl22-ha-live-")
    broker_port, http_port = free_port(), free_port()
    with open(os.path.join(work, "mosquitto.conf"), "w") as f:
        f.write(f"listener {broker_port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    config = os.path.join(work, "config")
    os.makedirs(config)
    with open(os.path.join(config, "configuration.yaml"), "w") as f:
        f.write(
            "homeassistant: {name: Check, latitude: 52.37, longitude: 4.89, elevation: 0, "
            "unit_system: metric, time_zone: UTC, currency: EUR, country: NL}\n"
            f"http: {{server_host: 127.0.0.1, server_port: {http_port}}}\n"
            "api:\nconfig:\nonboarding:\nwebsocket_api:\n")
    broker = subprocess.Popen(["mosquitto", "-c", os.path.join(work, "mosquitto.conf")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    hass_bin = os.path.join(os.path.dirname(sys.executable), "hass")
    hass = subprocess.Popen([hass_bin, "-c", config, "--log-file", os.path.join(work, "ha.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = mqtt.Client(client_id="ctrl22-ha-live-check")
    received: list[tuple[str, str, bool]] = []
    try:
        ha = Ha(f"http://127.0.0.1:{http_port}")
        wait_for("Home Assistant HTTP", lambda: ha.call("GET", "/api/onboarding")[0] == 200, 180)
        ha.onboard(broker_port)
        print("ok   Home Assistant up, MQTT integration added")

        client.on_message = lambda c, u, m: received.append((m.topic, m.payload.decode(), m.retain))
        client.connect("127.0.0.1", broker_port)
        client.subscribe("ctrl22/+/node/+/set/+")
        client.subscribe("ctrl22/+/site/set/+")
        client.loop_start()

        state_topics = {m["payload"]["state_topic"] for m in messages if "state_topic" in m["payload"]}
        avail_topics = {a["topic"] for m in messages for a in m["payload"].get("availability", [])}
        for m in messages:
            client.publish(m["topic"], json.dumps(m["payload"]), qos=1, retain=True)
        for t in avail_topics:
            client.publish(t, "online", qos=1, retain=True)
        for t in state_topics:
            sample = SITE_STATE if t.endswith("/site/state") else BAY_STATE
            client.publish(t, json.dumps(sample), qos=1, retain=True)

        wanted = {
            f"{m['topic'].split('/')[1]}.{m['payload']['object_id']}": m for m in messages
        }
        states = wait_for("all entities", lambda: (s := ha.states()) and
                          all(e in s for e in wanted) and s, 90)
        time.sleep(2)
        states = ha.states()
        expect(all(e in states for e in wanted), f"all {len(wanted)} entities exist under their object_id")

        bay = next(m["payload"]["object_id"].removesuffix("_power") for m in messages
                   if m["payload"].get("unique_id", "").endswith("_power")
                   and "node" in m["payload"].get("state_topic", ""))
        site = next(m["payload"]["object_id"].removesuffix("_grid_power") for m in messages
                    if m["payload"]["object_id"].endswith("_grid_power"))
        dev = next(m["payload"]["state_topic"].split("/")[3] for m in messages
                   if m["payload"]["object_id"] == f"{bay}_power")
        site_id = messages[0]["payload"]["state_topic"].split("/")[1]

        def st(eid: str) -> dict[str, Any]:
            return states.get(eid, {"state": None, "attributes": {}})

        for eid, value, unit, dclass in [
            (f"sensor.{bay}_power", "7360", "W", "power"),
            (f"sensor.{bay}_current_l1", "15.9", "A", "current"),
            (f"sensor.{bay}_total_energy", "1234.5", "kWh", "energy"),
            (f"sensor.{bay}_rssi", "-67", "dBm", "signal_strength"),
            (f"sensor.{site}_pv_power", "6400", "W", "power"),
            (f"sensor.{site}_ev_energy", "5321.0", "kWh", "energy"),
        ]:
            a = st(eid)["attributes"]
            expect(st(eid)["state"] == value and a.get("unit_of_measurement") == unit
                   and a.get("device_class") == dclass,
                   f"{eid} = {st(eid)['state']} {a.get('unit_of_measurement')} ({a.get('device_class')})")
        expect(st(f"sensor.{bay}_total_energy")["attributes"].get("state_class") == "total_increasing",
               "total energy is total_increasing")
        for eid, value in [
            (f"sensor.{bay}_state", "charging"),
            (f"binary_sensor.{bay}_plugged", "on"),
            (f"binary_sensor.{bay}_problem", "off"),
            (f"binary_sensor.{bay}_online", "on"),
            (f"select.{bay}_charge_mode", "pv"),
            (f"number.{bay}_max_current", "16"),
            (f"switch.{bay}_enabled", "on"),
            (f"text.{bay}_departure_time", "07:30"),
            (f"update.{bay}_firmware", "on"),
            (f"select.{site}_strategy", "fair"),
            (f"binary_sensor.{site}_solar_ok", "on"),
        ]:
            expect(st(eid)["state"] == value, f"{eid} = {st(eid)['state']!r} (want {value!r})")

        registry = ha.devices()
        by_ident = {tuple(i) for d in registry for i in d["identifiers"]}
        site_dev = next((d for d in registry if ["mqtt", f"ctrl22_site_{site_id}"] in d["identifiers"]), None)
        bay_dev = next((d for d in registry if ["mqtt", f"ctrl22_{dev}"] in d["identifiers"]), None)
        expect(site_dev is not None and bay_dev is not None, f"site and bay devices registered {sorted(by_ident)}")
        if site_dev and bay_dev:
            expect(bay_dev["via_device_id"] == site_dev["id"], "bay via_device resolves to the site device")
            expect(any(c[0] == "mac" for c in bay_dev["connections"]),
                   f"bay has its MAC as a connection {bay_dev['connections']}")
            expect(bay_dev["manufacturer"] == "CTRL22" and bay_dev["sw_version"] == "3.5",
                   f"bay manufacturer/sw_version {bay_dev['manufacturer']}/{bay_dev['sw_version']}")

        base = f"ctrl22/{site_id}"
        for (domain, service, data), (topic, payload) in [
            (("select", "select_option", {"entity_id": f"select.{bay}_charge_mode", "option": "now"}),
             (f"{base}/node/{dev}/set/mode", "now")),
            (("number", "set_value", {"entity_id": f"number.{bay}_max_current", "value": 20}),
             (f"{base}/node/{dev}/set/max_current_a", "20")),
            (("switch", "turn_off", {"entity_id": f"switch.{bay}_enabled"}),
             (f"{base}/node/{dev}/set/enabled", "OFF")),
            (("button", "press", {"entity_id": f"button.{bay}_start"}),
             (f"{base}/node/{dev}/set/start", "PRESS")),
            (("text", "set_value", {"entity_id": f"text.{bay}_departure_time", "value": "06:45"}),
             (f"{base}/node/{dev}/set/departure_time", "06:45")),
            (("number", "set_value", {"entity_id": f"number.{bay}_target_energy", "value": 12.5}),
             (f"{base}/node/{dev}/set/target_energy_kwh", "12.5")),
            (("number", "set_value", {"entity_id": f"number.{site}_limit_l2", "value": 25}),
             (f"{base}/site/set/limit_l2_a", "25")),
            (("select", "select_option", {"entity_id": f"select.{site}_strategy", "option": "fcfs"}),
             (f"{base}/site/set/strategy", "fcfs")),
        ]:
            ha.service(domain, service, data)
            try:
                got = wait_for(topic, lambda: [r for r in received if r[0] == topic], 10)
                expect(got[-1][1] == payload and not got[-1][2],
                       f"{domain}.{service} -> {topic} {got[-1][1]!r} (retain={got[-1][2]})")
            except AssertionError as exc:
                expect(False, str(exc))

        client.publish(f"{base}/node/{dev}/availability", "offline", qos=1, retain=True)
        client.publish(f"{base}/node/{dev}/state", json.dumps(dict(BAY_STATE, online=False)),
                       qos=1, retain=True)
        time.sleep(2)
        states = ha.states()
        expect(st(f"sensor.{bay}_power")["state"] == "unavailable",
               f"node offline: sensor.{bay}_power {st(f'sensor.{bay}_power')['state']}")
        expect(st(f"binary_sensor.{bay}_online")["state"] == "off",
               f"node offline: binary_sensor.{bay}_online {st(f'binary_sensor.{bay}_online')['state']}")
        expect(st(f"sensor.{site}_grid_power")["state"] == "1200", "node offline: site unaffected")

        with open(os.path.join(work, "ha.log"), encoding="utf-8", errors="replace") as f:
            log_errors = [l.strip() for l in f if " ERROR " in l and "mqtt" in l.lower()]
        expect(not log_errors, f"no MQTT errors in the Home Assistant log {log_errors[:3]}")
    finally:
        client.loop_stop()
        hass.terminate()
        broker.terminate()
        for p in (hass, broker):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        if not failures:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work} (ha.log) for inspection")
    print(f"{'FAILED' if failures else 'OK'}: {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
