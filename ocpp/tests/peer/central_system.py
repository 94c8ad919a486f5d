"""A central system for the ctrl22-ocpp peer test, written with the PyPI `ocpp` package
(JSON schema validation on, its default). Listens on 127.0.0.1 (free port, printed first),
accepts one charge point, runs a short script of CS -> CP calls after the boot and logs
every message it receives or gets answered as one JSON line on stdout."""

import asyncio
import dataclasses
import json
import sys
from datetime import datetime, timezone

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16 import datatypes
from ocpp.v16.enums import (
    Action,
    AuthorizationStatus,
    ChargingProfileKindType,
    ChargingProfilePurposeType,
    ChargingRateUnitType,
    MessageTrigger,
    RegistrationStatus,
)


def log(kind, action, payload):
    if dataclasses.is_dataclass(payload):
        payload = dataclasses.asdict(payload)
    print(json.dumps({"kind": kind, "action": action, "payload": payload}, default=str), flush=True)


def now():
    return datetime.now(timezone.utc).isoformat()


class CentralSystem(ChargePoint):
    booted = None

    @on(Action.boot_notification)
    def on_boot(self, **payload):
        log("recv", "BootNotification", payload)
        self.booted.set()
        return call_result.BootNotification(current_time=now(), interval=2, status=RegistrationStatus.accepted)

    @on(Action.heartbeat)
    def on_heartbeat(self, **payload):
        log("recv", "Heartbeat", payload)
        return call_result.Heartbeat(current_time=now())

    @on(Action.status_notification)
    def on_status(self, **payload):
        log("recv", "StatusNotification", payload)
        return call_result.StatusNotification()

    @on(Action.start_transaction)
    def on_start(self, **payload):
        log("recv", "StartTransaction", payload)
        return call_result.StartTransaction(transaction_id=42, id_tag_info={"status": AuthorizationStatus.accepted})

    @on(Action.meter_values)
    def on_meter_values(self, **payload):
        log("recv", "MeterValues", payload)
        return call_result.MeterValues()

    @on(Action.stop_transaction)
    def on_stop(self, **payload):
        log("recv", "StopTransaction", payload)
        return call_result.StopTransaction(id_tag_info={"status": AuthorizationStatus.accepted})

    @on(Action.authorize)
    def on_authorize(self, **payload):
        log("recv", "Authorize", payload)
        return call_result.Authorize(id_tag_info={"status": AuthorizationStatus.accepted})


async def script(cp):
    await cp.booted.wait()
    await asyncio.sleep(0.5)
    result = await cp.call(call.GetConfiguration(key=["HeartbeatInterval", "SupportedFeatureProfiles"]))
    log("result", "GetConfiguration", result)
    result = await cp.call(call.TriggerMessage(requested_message=MessageTrigger.status_notification, connector_id=1))
    log("result", "TriggerMessage", result)
    try:
        await cp.call(call.UpdateFirmware(location="ftp://127.0.0.1/fw.bin", retrieve_date=now()), suppress=False)
        log("result", "UpdateFirmware", "answered with a CALLRESULT")
    except Exception as error:  # the CALLERROR, as an exception of its code's class
        log("error", "UpdateFirmware", type(error).__name__)
    profile = datatypes.ChargingProfile(
        charging_profile_id=1,
        stack_level=0,
        charging_profile_purpose=ChargingProfilePurposeType.tx_default_profile,
        charging_profile_kind=ChargingProfileKindType.relative,
        charging_schedule=datatypes.ChargingSchedule(
            charging_rate_unit=ChargingRateUnitType.amps,
            charging_schedule_period=[datatypes.ChargingSchedulePeriod(start_period=0, limit=10.0)],
        ),
    )
    result = await cp.call(call.SetChargingProfile(connector_id=0, cs_charging_profiles=profile))
    log("result", "SetChargingProfile", result)
    result = await cp.call(call.GetCompositeSchedule(connector_id=1, duration=600, charging_rate_unit=ChargingRateUnitType.amps))
    log("result", "GetCompositeSchedule", result)
    result = await cp.call(call.RemoteStartTransaction(id_tag="PYTAG", connector_id=1))
    log("result", "RemoteStartTransaction", result)
    log("done", "script", None)


async def main():
    async def on_connect(websocket):
        cp_id = websocket.request.path.strip("/")
        log("connect", "open", {"id": cp_id, "subprotocol": websocket.subprotocol})
        cp = CentralSystem(cp_id, websocket, response_timeout=10)
        cp.booted = asyncio.Event()
        await asyncio.gather(cp.start(), script(cp))

    server = await websockets.serve(on_connect, "127.0.0.1", 0, subprotocols=["ocpp1.6"])
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
