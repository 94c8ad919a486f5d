#!/usr/bin/env python3
"""Check MQTT discovery messages against Home Assistant's own platform schemas.

Input: JSON lines (or a JSON list) of {"topic": ..., "payload": <object or JSON string>},
from files given as arguments or from stdin. `cargo test -p ctrl22-ha --test snapshots --
--ignored dump_discovery` writes such files (see README.md).

What is checked, per message:
- the topic matches Home Assistant's discovery topic pattern;
- per-entity messages: the payload, abbreviations expanded, passes the platform's
  DISCOVERY_SCHEMA of the installed Home Assistant (2024.3.3 here);
- device messages (<prefix>/device/<id>/config, Home Assistant 2024.11+): `dev`, `o` and `cmps`
  are present; every component has `p` and `unique_id`; the shared top-level options are
  merged into each component the way 2024.11+ does (a component's own value wins), device and
  origin added, and the result passes that platform's DISCOVERY_SCHEMA;
- rules newer Home Assistant enforces that 2024.3.3 does not (2025.6+/2025.9+ reject a sensor
  whose unit does not fit its device class or whose state class does not fit it; enum sensors
  take options and neither unit nor state class; numbers' units fit their device class),
  using the installed release's DEVICE_CLASS_UNITS / DEVICE_CLASS_STATE_CLASSES tables;
- default_entity_id is `<platform>.<slug>`, object_id (if present) equals its tail, unique ids
  and entity ids are unique over all input.

Keys the installed release does not know (default_entity_id, options on an enum sensor in
2024.3.3) are reported as notes, not errors. Exit status 1 if anything failed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
from typing import Any, Iterable

import voluptuous as vol
from homeassistant.components.mqtt.abbreviations import (
    ABBREVIATIONS,
    DEVICE_ABBREVIATIONS,
    ORIGIN_ABBREVIATIONS,
)
from homeassistant.components.mqtt.discovery import SUPPORTED_COMPONENTS
from homeassistant.components.number.const import DEVICE_CLASS_UNITS as NUMBER_UNITS
from homeassistant.components.sensor.const import (
    DEVICE_CLASS_STATE_CLASSES as SENSOR_STATE_CLASSES,
    DEVICE_CLASS_UNITS as SENSOR_UNITS,
)
from homeassistant.const import __version__ as HA_VERSION

try:  # 2024.6+
    from homeassistant.components.mqtt.schemas import MQTT_ORIGIN_INFO_SCHEMA
except ImportError:  # 2024.3.x
    from homeassistant.components.mqtt.mixins import MQTT_ORIGIN_INFO_SCHEMA

TOPIC = re.compile(
    r"^(?P<prefix>.+?)/(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?"
    r"(?P<object_id>[a-zA-Z0-9_-]+)/config$"
)
ENTITY_ID = re.compile(r"^(?P<domain>[a-z_]+)\.(?P<object>[a-z0-9_]+)$")
# Device discovery keys that 2024.3.3's abbreviation table does not have.
DEVICE_MESSAGE_KEYS = {"dev": "device", "o": "origin", "cmps": "components"}
PLATFORM_KEYS = ("p", "platform")
# Options a device message may set for all its components (2024.11+).
SHARED_OPTIONS = ("state_topic", "command_topic", "qos", "encoding")
AVAILABILITY_OPTIONS = (
    "availability",
    "availability_topic",
    "availability_mode",
    "availability_template",
    "payload_available",
    "payload_not_available",
)


def expand(payload: dict[str, Any]) -> dict[str, Any]:
    """Replace abbreviated keys as Home Assistant's discovery does before validation."""
    p = {ABBREVIATIONS.get(k, k): v for k, v in payload.items()}
    if isinstance(p.get("device"), dict):
        p["device"] = {DEVICE_ABBREVIATIONS.get(k, k): v for k, v in p["device"].items()}
    if isinstance(p.get("origin"), dict):
        p["origin"] = {ORIGIN_ABBREVIATIONS.get(k, k): v for k, v in p["origin"].items()}
    if isinstance(p.get("availability"), list):
        p["availability"] = [
            {ABBREVIATIONS.get(k, k): v for k, v in a.items()} if isinstance(a, dict) else a
            for a in p["availability"]
        ]
    if "~" in p:
        base = p.pop("~")
        for k, v in list(p.items()):
            if k.endswith("topic") and isinstance(v, str) and v:
                if v[0] == "~":
                    p[k] = base + v[1:]
                if v[-1] == "~":
                    p[k] = v[:-1] + base
    return p


class Report:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.notes: set[str] = set()
        self.checked = 0
        self.unique_ids: dict[str, str] = {}
        self.entity_ids: dict[str, str] = {}

    def error(self, where: str, msg: str) -> None:
        self.errors.append(f"{where}: {msg}")


def newer_release_rules(where: str, platform: str, cfg: dict[str, Any], rep: Report) -> None:
    """Unit / class rules that 2025.6+ and 2025.9+ enforce and 2024.3.3 does not."""
    dc = cfg.get("device_class")
    unit = cfg.get("unit_of_measurement")
    if platform == "sensor":
        sc = cfg.get("state_class")
        options = cfg.get("options")
        if dc == "enum":
            if unit is not None or sc is not None:
                rep.error(where, "enum sensor with a unit or state class")
            if not options:
                rep.error(where, "enum sensor without options")
            return
        if options is not None:
            rep.error(where, "options on a sensor that is not an enum")
        if dc is None:
            return
        units = SENSOR_UNITS.get(dc)
        if units is not None and unit not in units:
            rep.error(where, f"unit {unit!r} does not fit device class {dc} ({sorted(map(str, units))})")
        classes = SENSOR_STATE_CLASSES.get(dc)
        if sc is not None and classes is not None and sc not in classes:
            rep.error(where, f"state class {sc} does not fit device class {dc}")
    elif platform == "number":
        units = NUMBER_UNITS.get(dc) if dc is not None else None
        if units is not None and unit not in units:
            rep.error(where, f"unit {unit!r} does not fit number device class {dc}")
        for bound in ("min", "max"):
            if bound not in cfg:
                rep.error(where, f"number without explicit {bound} (default range is 0..100)")


def check_ids(where: str, platform: str, cfg: dict[str, Any], rep: Report) -> None:
    uid = cfg.get("unique_id")
    if not uid:
        rep.error(where, "no unique_id")
    elif uid in rep.unique_ids:
        rep.error(where, f"unique_id {uid} also used by {rep.unique_ids[uid]}")
    else:
        rep.unique_ids[uid] = where
    eid = cfg.get("default_entity_id")
    if eid is None:
        return
    m = ENTITY_ID.match(eid)
    if not m or m["domain"] != platform:
        rep.error(where, f"default_entity_id {eid!r} is not {platform}.<slug>")
        return
    if "object_id" in cfg and cfg["object_id"] != m["object"]:
        rep.error(where, f"object_id {cfg['object_id']!r} differs from default_entity_id {eid!r}")
    if eid in rep.entity_ids:
        rep.error(where, f"entity id {eid} also used by {rep.entity_ids[eid]}")
    else:
        rep.entity_ids[eid] = where


def validate_component(where: str, platform: str, cfg: dict[str, Any], rep: Report) -> None:
    if platform not in SUPPORTED_COMPONENTS:
        rep.error(where, f"platform {platform!r} not supported by Home Assistant {HA_VERSION}")
        return
    check_ids(where, platform, cfg, rep)
    newer_release_rules(where, platform, cfg, rep)
    if "origin" in cfg:
        try:
            MQTT_ORIGIN_INFO_SCHEMA(cfg["origin"])
        except vol.Invalid as exc:
            rep.error(where, f"origin: {exc}")
    module = importlib.import_module(f"homeassistant.components.mqtt.{platform}")
    candidate = dict(cfg, platform="mqtt")
    try:
        validated = module.DISCOVERY_SCHEMA(candidate)
    except vol.Invalid as exc:
        rep.error(where, f"{platform} schema: {exc}")
        return
    dropped = sorted(set(candidate) - set(validated) - {"platform"})
    if dropped:
        rep.notes.add(f"{platform}: keys Home Assistant {HA_VERSION} ignores: {dropped}")
    rep.checked += 1


def validate_device_message(topic: str, payload: dict[str, Any], rep: Report) -> None:
    msg = {DEVICE_MESSAGE_KEYS.get(k, k): v for k, v in payload.items()}
    msg = {ABBREVIATIONS.get(k, k) if k not in DEVICE_MESSAGE_KEYS.values() else k: v for k, v in msg.items()}
    for required in ("device", "origin", "components"):
        if required not in msg:
            rep.error(topic, f"device message without {required}")
    components = msg.get("components")
    if not isinstance(components, dict) or not components:
        rep.error(topic, "cmps must be a non-empty object")
        return
    device = {DEVICE_ABBREVIATIONS.get(k, k): v for k, v in msg.get("device", {}).items()}
    origin = {ORIGIN_ABBREVIATIONS.get(k, k): v for k, v in msg.get("origin", {}).items()}
    shared = expand({k: v for k, v in msg.items() if k not in ("device", "origin", "components")})
    for comp_id, raw in components.items():
        where = f"{topic} [{comp_id}]"
        if not isinstance(raw, dict):
            rep.error(where, "component is not an object")
            continue
        platform = next((raw[k] for k in PLATFORM_KEYS if k in raw), None)
        if platform is None:
            rep.error(where, "component without p (platform)")
            continue
        cfg = expand({k: v for k, v in raw.items() if k not in PLATFORM_KEYS})
        own_availability = any(k in cfg for k in AVAILABILITY_OPTIONS)
        for key, value in shared.items():
            if key in AVAILABILITY_OPTIONS:
                if not own_availability:
                    cfg[key] = value
            elif key in SHARED_OPTIONS:
                cfg.setdefault(key, value)
            else:
                rep.error(where, f"top-level key {key!r} is not a shared option")
        if "device" in cfg or "origin" in cfg:
            rep.error(where, "device/origin belong at the top level of a device message")
        cfg["device"] = device
        cfg["origin"] = origin
        validate_component(where, platform, cfg, rep)


def validate_message(topic: str, payload: Any, rep: Report) -> None:
    m = TOPIC.match(topic)
    if not m:
        rep.error(topic, "not a discovery topic (ids allow [a-zA-Z0-9_-] only)")
        return
    if isinstance(payload, str):
        if payload == "":
            return  # a removal
        payload = json.loads(payload)
    if not isinstance(payload, dict):
        rep.error(topic, "payload is not a JSON object")
        return
    if m["component"] == "device":
        validate_device_message(topic, payload, rep)
    else:
        validate_component(topic, m["component"], expand(payload), rep)


def read_messages(sources: Iterable[str]) -> Iterable[tuple[str, Any]]:
    for text in sources:
        text = text.strip()
        if not text:
            continue
        if text.startswith("["):
            items = json.loads(text)
        else:
            items = [json.loads(line) for line in text.splitlines() if line.strip()]
        for item in items:
            yield item["topic"], item["payload"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", help="JSON lines / JSON list files (default: stdin)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print notes")
    args = ap.parse_args()
    sources = [open(f, encoding="utf-8").read() for f in args.files] or [sys.stdin.read()]
    rep = Report()
    messages = 0
    for topic, payload in read_messages(sources):
        messages += 1
        try:
            validate_message(topic, payload, rep)
        except (ValueError, KeyError, TypeError) as exc:
            rep.error(topic, f"unreadable: {exc!r}")
    for note in sorted(rep.notes):
        if args.verbose:
            print(f"note: {note}")
    for err in rep.errors:
        print(f"ERROR {err}")
    status = "FAILED" if rep.errors else "OK"
    print(
        f"{status}: Home Assistant {HA_VERSION}: {messages} messages, {rep.checked} components "
        f"valid, {len(rep.errors)} errors"
    )
    return 1 if rep.errors or messages == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
