#!/usr/bin/env python3
"""End to end with a real Home Assistant: Mosquitto, the ctrl22-bridge binary (per-entity
discovery), the ctrl22-node-sim simulator and the venv's Home Assistant, all on free local
ports in a temporary directory.

Usage (with the Home Assistant venv's python, from a neutral directory):
    e2e_live.py --bridge target/debug/ctrl22-bridge --sim target/debug/ctrl22-node-sim
    e2e_live.py --bridge ... --broker-port PORT   # a running broker with bays already on it
                                                  # (mesh DEMESH, cars plugged), as
                                                  # bridge/tests/e2e/ha_live.rs does

Checks, through Home Assistant's REST and websocket APIs:
- every entity the bridge announces exists, available, with the device class, unit and state
  class of its discovery payload, and a few pinned ones (power W, energy kWh
  total_increasing, current A) as the contract says;
- the state Home Assistant shows is the bridge's state (max current, charge mode, currents);
- number.set_value (max current 10 A) makes the bridge send `smaxcur` <= 100 to that node,
  select.select_option (charge mode off) `smaxcur` 0 to another, button.press stop/start an
  `opbutton` press to a third (watched on `/<mesh>/+/control`);
- with `--ota`: the controller's update entity shows the image in the bridge's firmware
  folder as the latest version; update.install on a charging bay is refused (the entity's
  release summary says why), on a stopped one it flashes the controller (a firmware job of
  the bridge) until the entity shows the new version installed;
- SIGKILL of the bridge turns the entities unavailable (last will);
- no MQTT errors in Home Assistant's log.
Prints the entity table (entity_id, device_class, unit, state_class). Exit status 1 on any
failure; the work directory (logs) is kept then.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from live_check import Ha, free_port, wait_for  # noqa: E402

MESH = "DEMESH"
SITE = "Live Site"
SITE_ID = "live_site"
PREFIX = "homeassistant"


class Wire:
    """Every MQTT message of the run, for the checks to look back at."""

    def __init__(self, port: int) -> None:
        self.lock = threading.Lock()
        self.messages: list[tuple[float, str, bytes, bool]] = []
        self.client = mqtt.Client(client_id="ctrl22-e2e-live-watcher")
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, u, f, rc: [
            c.subscribe(t) for t in (f"{PREFIX}/#", f"ctrl22/{SITE_ID}/#", f"/{MESH}/+/control")
        ]
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _c, _u, m) -> None:
        with self.lock:
            self.messages.append((time.monotonic(), m.topic, m.payload, bool(m.retain)))

    def since(self, t: float) -> list[tuple[float, str, bytes, bool]]:
        with self.lock:
            return [m for m in self.messages if m[0] >= t]

    def discovery(self) -> dict[str, dict[str, Any]]:
        """The latest non-empty config per topic."""
        out: dict[str, dict[str, Any]] = {}
        for _, topic, payload, _ in self.since(0):
            if topic.startswith(PREFIX + "/") and topic.endswith("/config"):
                if payload:
                    out[topic] = json.loads(payload)
                else:
                    out.pop(topic, None)
        return out

    def bay_state(self, dev: str) -> dict[str, Any]:
        topic = f"ctrl22/{SITE_ID}/node/{dev}/state"
        states = [p for _, t, p, _ in self.since(0) if t == topic and p]
        return json.loads(states[-1]) if states else {}

    def writes(self, dev: str, par: str, since: float) -> list[int]:
        topic = f"/{MESH}/{dev}/control"
        out = []
        for _, t, p, _ in self.since(since):
            if t != topic:
                continue
            try:
                body = json.loads(p)
            except ValueError:
                continue
            if body.get("cmd") == "avrsetpar" and body.get("avrpar") == par:
                out.append(int(body.get("avrval")))
        return out

    def stop(self) -> None:
        self.client.loop_stop()


# The simulator's board, and the controller image the --ota check installs.
BOARD = "agccs12"
OTA_VERSION = 15


def controller_image(work: str) -> str:
    """A firmware folder with a 4 KiB Intel HEX image for the simulator's controller; the
    simulator reads its new `ver` from the `CTRL22VER=` tag in the image."""
    folder = os.path.join(work, "firmware")
    os.makedirs(folder)
    image = b"\x0c\x94\x5c\x00" + f"CTRL22VER={OTA_VERSION}\0".encode()
    image += bytes(i % 251 for i in range(4096 - len(image)))
    lines = []
    for offset in range(0, len(image), 16):
        chunk = image[offset:offset + 16]
        record = bytes([len(chunk), offset >> 8, offset & 0xFF, 0]) + chunk
        record += bytes([(-sum(record)) & 0xFF])
        lines.append(":" + record.hex().upper())
    lines.append(":00000001FF")
    with open(os.path.join(folder, f"ctrl22_{BOARD}_{OTA_VERSION}.hex"), "w", encoding="ascii") as f:
        f.write("\n".join(lines) + "\n")
    return folder


def bridge_config(work: str, broker_port: int, firmware: str | None = None) -> str:
    path = os.path.join(work, "ctrl22.toml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"""
[mqtt]
url = "mqtt://127.0.0.1:{broker_port}"
client_id = "ctrl22-e2e-live"

[mesh]
mesh_id = "{MESH}"
heartbeat_timeout = "3s"
wdtsec = 6
setpoint_refresh = "2s"

[site]
name = "{SITE}"
max_current = [63, 63, 63]
min_on = "2s"
min_off = "2s"

[homeassistant]
enabled = true
discovery_prefix = "{PREFIX}"
discovery = "entity"

[http]
listen = "127.0.0.1:{free_port()}"

[storage]
path = "{os.path.join(work, 'ctrl22.db')}"
""")
        if firmware:
            # The ESP32 image server on loopback and a free port, beside other tests.
            f.write(f'\n[firmware]\ndir = "{firmware}"\n'
                    f'esp32_host = "127.0.0.1"\nesp32_port = {free_port()}\n')
    return path


def ha_config(work: str, http_port: int) -> str:
    config = os.path.join(work, "ha")
    os.makedirs(config)
    with open(os.path.join(config, "configuration.yaml"), "w", encoding="utf-8") as f:
        f.write(
            "homeassistant: {name: E2E, latitude: 52.37, longitude: 4.89, elevation: 0, "
            "unit_system: metric, time_zone: UTC, currency: EUR, country: NL}\n"
            f"http: {{server_host: 127.0.0.1, server_port: {http_port}}}\n"
            "api:\nconfig:\nonboarding:\nwebsocket_api:\n")
    return config


def ota_check(ha: Ha, expect, eid, charging: str, stopped: str) -> None:
    """update.install of the controller firmware: refused on the charging bay, installed on
    the stopped one."""
    def update(dev: str) -> dict[str, Any]:
        return ha.states().get(eid(dev, "controller_firmware"), {})

    def update_with(dev: str, key: str, value: str) -> dict[str, Any] | None:
        state = update(dev)
        return state if state.get("attributes", {}).get(key) == value else None

    want = f"{OTA_VERSION // 10}.{OTA_VERSION % 10}"
    try:
        state = wait_for("the folder's image as the latest controller version",
                         lambda: update_with(stopped, "latest_version", want), 60)
        expect(state["state"] == "on",
               f"update entity: {state['attributes'].get('installed_version')} installed, "
               f"{want} available ({state['state']})")
        ha.service("update", "install", {"entity_id": eid(charging, "controller_firmware")})
        summary = wait_for("the refusal in the release summary",
                           lambda: "session" in str(update(charging).get("attributes", {})
                                                    .get("release_summary", "")) and
                           update(charging)["attributes"]["release_summary"], 20)
        expect(True, f"update.install on the charging bay refused: {summary!r}")
        t = time.monotonic()
        ha.service("update", "install", {"entity_id": eid(stopped, "controller_firmware")})
        state = wait_for(f"controller {want} installed on {stopped}",
                         lambda: update_with(stopped, "installed_version", want), 90)
        expect(state["state"] == "off",
               f"update.install flashed {stopped} in {time.monotonic() - t:.0f} s: "
               f"{want} installed, up to date ({state['state']})")
    except AssertionError as e:
        expect(False, f"{e}: {update(stopped)} / {update(charging)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bridge", required=True)
    parser.add_argument("--sim", help="ctrl22-node-sim binary; without it the bays must be "
                        "on the broker already")
    parser.add_argument("--broker-port", type=int,
                        help="use this broker on 127.0.0.1 instead of starting mosquitto")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--ota", action="store_true",
                        help="also install a controller image from Home Assistant")
    args = parser.parse_args()
    started = time.monotonic()

    failures: list[str] = []

    def expect(cond: bool, msg: str) -> bool:
        print(("ok   " if cond else "FAIL ") + msg, flush=True)
        if not cond:
            failures.append(msg)
        return cond

    work = tempfile.mkdtemp(prefix="ctrl22-e2e-live-")
    broker_port, http_port = args.broker_port or free_port(), free_port()
    with open(os.path.join(work, "mosquitto.conf"), "w", encoding="utf-8") as f:
        f.write(f"listener {broker_port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    procs: dict[str, subprocess.Popen] = {}
    logs = []

    def start(name: str, argv: list[str], **env: str) -> subprocess.Popen:
        log = open(os.path.join(work, f"{name}.log"), "wb")
        logs.append(log)
        procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env={**os.environ, **env})
        return procs[name]

    wire = None
    try:
        if not args.broker_port:
            mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
            start("mosquitto", [mosquitto, "-c", os.path.join(work, "mosquitto.conf")])
        # Home Assistant takes longest to come up: start it first.
        hass_bin = os.path.join(os.path.dirname(sys.executable), "hass")
        start("hass", [hass_bin, "-c", ha_config(work, http_port),
                       "--log-file", os.path.join(work, "ha", "ha.log")])
        time.sleep(0.5)
        wire = Wire(broker_port)
        firmware = controller_image(work) if args.ota else None
        start("bridge", [args.bridge, "run", "--config", bridge_config(work, broker_port, firmware)],
              RUST_LOG="info")
        if args.sim:
            start("sim", [args.sim, "--broker", f"mqtt://127.0.0.1:{broker_port}", "--mesh-id", MESH,
                          "--nodes", str(args.nodes), "--heartbeat", "1000", "--seed", "5",
                          "--arrivals", "all-plugged"], RUST_LOG="warn")

        ha = Ha(f"http://127.0.0.1:{http_port}")
        wait_for("Home Assistant HTTP", lambda: ha.call("GET", "/api/onboarding")[0] == 200, 240)
        ha.onboard(broker_port)
        print(f"ok   Home Assistant up, MQTT integration added ({time.monotonic() - started:.0f} s)")

        # Everything the bridge announces, once every bay is known.
        def all_devices():
            disc = wire.discovery()
            devs = {p["device"]["identifiers"][0] for p in disc.values()}
            return disc if len(devs) == args.nodes + 1 else None

        disc = wait_for(f"discovery of {args.nodes} bays and the site", all_devices, 60)
        time.sleep(2)
        disc = wire.discovery()
        by_entity = {f"{t.split('/')[1]}.{p['object_id']}": p for t, p in disc.items()}
        by_unique = {p["unique_id"]: eid for eid, p in by_entity.items()}
        devs = sorted({p["unique_id"].split("_")[1] for p in disc.values()
                       if not p["unique_id"].startswith("ctrl22_site_")})
        expect(len(devs) == args.nodes, f"bays announced: {devs}")

        def ready():
            s = ha.states()
            return s if all(e in s and s[e]["state"] != "unavailable" for e in by_entity) else None

        states = wait_for(f"all {len(by_entity)} entities available in Home Assistant", ready, 90)
        expect(True, f"{len(by_entity)} entities exist and are available "
                     f"({time.monotonic() - started:.0f} s)")

        # Classes and units: Home Assistant shows what the bridge announced.
        table = []
        for eid in sorted(by_entity):
            p, a = by_entity[eid], states[eid]["attributes"]
            row = (eid, a.get("device_class"), a.get("unit_of_measurement"), a.get("state_class"))
            table.append(row)
            want = (eid, p.get("device_class"), p.get("unit_of_measurement"), p.get("state_class"))
            if row != want:
                expect(False, f"{eid}: Home Assistant {row[1:]} != announced {want[1:]}")
        expect(not [r for r in table if r[1:] != (by_entity[r[0]].get("device_class"),
                                                  by_entity[r[0]].get("unit_of_measurement"),
                                                  by_entity[r[0]].get("state_class"))],
               "device_class/unit/state_class of every entity as announced")

        def eid(dev_or_site: str, key: str) -> str:
            uid = (f"ctrl22_site_{SITE_ID}_{key}" if dev_or_site == "site"
                   else f"ctrl22_{dev_or_site}_{key}")
            return by_unique.get(uid, f"<no {uid}>")

        def attrs(e: str) -> tuple:
            a = states.get(e, {}).get("attributes", {})
            return (a.get("device_class"), a.get("unit_of_measurement"), a.get("state_class"))

        bay_a, bay_b, bay_c = (devs + devs + devs)[:3]
        for e, want in [
            (eid(bay_a, "power"), ("power", "W", "measurement")),
            (eid(bay_a, "current_l1"), ("current", "A", "measurement")),
            (eid(bay_a, "total_energy"), ("energy", "kWh", "total_increasing")),
            (eid(bay_a, "session_energy"), ("energy", "kWh", "total_increasing")),
            (eid(bay_a, "rssi"), ("signal_strength", "dBm", "measurement")),
            (eid(bay_a, "max_current"), ("current", "A", None)),
            (eid("site", "grid_power"), ("power", "W", "measurement")),
            (eid("site", "ev_energy"), ("energy", "kWh", "total_increasing")),
        ]:
            expect(attrs(e) == want, f"{e}: {attrs(e)} (want {want})")

        # Values: what Home Assistant shows is the bridge's state.
        def same_values():
            s, bay = ha.states(), wire.bay_state(bay_a)
            pairs = [
                (s.get(eid(bay_a, "max_current"), {}).get("state"), bay.get("max_current_a")),
                (s.get(eid(bay_a, "current_l1"), {}).get("state"), bay.get("current_l1_a")),
                (s.get(eid(bay_a, "power"), {}).get("state"), bay.get("power_w")),
            ]
            try:
                numbers = all(abs(float(h) - float(b)) < 0.051 for h, b in pairs)
            except (TypeError, ValueError):
                return None
            mode = s.get(eid(bay_a, "charge_mode"), {}).get("state") == bay.get("mode")
            return (pairs, bay.get("mode")) if numbers and mode else None

        try:
            pairs, mode = wait_for("Home Assistant's values equal the bridge's state", same_values, 20)
            expect(True, f"values as published: (HA, bridge) {pairs}, mode {mode}")
        except AssertionError as e:
            expect(False, str(e))

        # Service calls reach the mesh.
        def mesh_write(what: str, dev: str, par: str, since: float, ok) -> None:
            try:
                vals = wait_for(what, lambda: [v for v in wire.writes(dev, par, since) if ok(v)], 20)
                expect(True, f"{what}: {par}={vals[0]} to {dev}")
            except AssertionError as e:
                expect(False, str(e))

        t = time.monotonic()
        ha.service("number", "set_value", {"entity_id": eid(bay_a, "max_current"), "value": 10})
        mesh_write("number.set_value max current 10 A", bay_a, "smaxcur", t, lambda v: v <= 100)

        if bay_b != bay_a:
            mesh_write("bay B is given current first", bay_b, "smaxcur", 0, lambda v: v > 0)
        t = time.monotonic()
        ha.service("select", "select_option", {"entity_id": eid(bay_b, "charge_mode"), "option": "off"})
        mesh_write("select.select_option charge mode off", bay_b, "smaxcur", t, lambda v: v == 0)

        def ccss(dev: str) -> str:
            return str(wire.bay_state(dev).get("ccss", ""))

        try:
            wait_for(f"bay {bay_c} charging", lambda: wire.bay_state(bay_c).get("charging"), 30)
        except AssertionError as e:
            expect(False, str(e))
        t = time.monotonic()
        ha.service("button", "press", {"entity_id": eid(bay_c, "stop")})
        mesh_write("button.press stop", bay_c, "opbutton", t, lambda v: True)
        try:
            wait_for(f"bay {bay_c} stopped", lambda: not wire.bay_state(bay_c).get("charging")
                     and not ccss(bay_c).startswith("C"), 30)
        except AssertionError as e:
            expect(False, f"{e} (ccss {ccss(bay_c)})")
        if args.ota:
            ota_check(ha, expect, eid, bay_a, bay_c)
        t = time.monotonic()
        ha.service("button", "press", {"entity_id": eid(bay_c, "start")})
        mesh_write("button.press start", bay_c, "opbutton", t, lambda v: True)

        # Bridge death: the last will makes everything unavailable.
        procs["bridge"].send_signal(signal.SIGKILL)
        procs["bridge"].wait(timeout=10)

        def all_unavailable():
            s = ha.states()
            return all(s.get(e, {}).get("state") == "unavailable" for e in by_entity)

        try:
            wait_for("every entity unavailable after SIGKILL of the bridge", all_unavailable, 20)
            expect(True, "bridge killed: every entity unavailable")
        except AssertionError as e:
            s = ha.states()
            left = [e for e in by_entity if s.get(e, {}).get("state") != "unavailable"]
            expect(False, f"{e}: still available {left[:5]}")

        with open(os.path.join(work, "ha", "ha.log"), encoding="utf-8", errors="replace") as f:
            log_errors = [line.strip() for line in f if " ERROR " in line and "mqtt" in line.lower()]
        expect(not log_errors, f"no MQTT errors in the Home Assistant log {log_errors[:3]}")

        print("\nentities as Home Assistant shows them (entity_id, device_class, unit, state_class):")
        for row in table:
            print("  " + "\t".join("-" if v is None else str(v) for v in row))
    except Exception as e:  # noqa: BLE001 - any crash of the check is a failure, logs kept
        expect(False, f"{type(e).__name__}: {e}")
    finally:
        if wire:
            wire.stop()
        for name in ("hass", "sim", "bridge", "mosquitto"):
            p = procs.get(name)
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for log in logs:
            log.close()
        if failures:
            print(f"kept {work} (hass, bridge, sim logs) for inspection")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{'FAILED' if failures else 'OK'}: {len(failures)} failures "
          f"in {time.monotonic() - started:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
