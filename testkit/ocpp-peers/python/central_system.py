"""A central system for the bridge's OCPP tests, written with the PyPI `ocpp` package (its
JSON schema validation on, the default). The protocol (arguments, stdout log lines, stdin
commands) is in ../README.md; the npm peer beside it speaks the same one."""

import argparse
import asyncio
import base64
import dataclasses
import json
import ssl
import sys
import uuid
from datetime import datetime, timezone

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action, AuthorizationStatus, RegistrationStatus


def emit(record):
    print(json.dumps(record, default=str), flush=True)


def now():
    return datetime.now(timezone.utc).isoformat()


def camel(name):
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def to_wire(value):
    """The ocpp package's snake_case dataclasses back into the wire's camelCase JSON."""
    if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {camel(k): to_wire(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [to_wire(v) for v in value]
    return value


def snake(name):
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def to_python(value):
    if isinstance(value, dict):
        return {snake(k): to_python(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_python(v) for v in value]
    return value


class CentralSystem(ChargePoint):
    heartbeat_s = 10
    counter = None  # shared, per process

    def recv(self, action, payload):
        emit({"kind": "recv", "cp": self.id, "action": action, "payload": to_wire(payload)})

    @on(Action.boot_notification)
    def on_boot(self, **payload):
        self.recv("BootNotification", payload)
        return call_result.BootNotification(
            current_time=now(), interval=self.heartbeat_s, status=RegistrationStatus.accepted
        )

    @on(Action.heartbeat)
    def on_heartbeat(self, **payload):
        self.recv("Heartbeat", payload)
        return call_result.Heartbeat(current_time=now())

    @on(Action.status_notification)
    def on_status(self, **payload):
        self.recv("StatusNotification", payload)
        return call_result.StatusNotification()

    @on(Action.authorize)
    def on_authorize(self, **payload):
        self.recv("Authorize", payload)
        return call_result.Authorize(id_tag_info={"status": AuthorizationStatus.accepted})

    @on(Action.start_transaction)
    def on_start(self, **payload):
        self.recv("StartTransaction", payload)
        transaction_id = CentralSystem.counter[0]
        CentralSystem.counter[0] += 1
        return call_result.StartTransaction(
            transaction_id=transaction_id, id_tag_info={"status": AuthorizationStatus.accepted}
        )

    @on(Action.stop_transaction)
    def on_stop(self, **payload):
        self.recv("StopTransaction", payload)
        return call_result.StopTransaction(id_tag_info={"status": AuthorizationStatus.accepted})

    @on(Action.meter_values)
    def on_meter_values(self, **payload):
        self.recv("MeterValues", payload)
        return call_result.MeterValues()

    @on(Action.data_transfer)
    def on_data_transfer(self, **payload):
        self.recv("DataTransfer", payload)
        return call_result.DataTransfer(status="Accepted")

    @on(Action.diagnostics_status_notification)
    def on_diagnostics(self, **payload):
        self.recv("DiagnosticsStatusNotification", payload)
        return call_result.DiagnosticsStatusNotification()

    @on(Action.firmware_status_notification)
    def on_firmware(self, **payload):
        self.recv("FirmwareStatusNotification", payload)
        return call_result.FirmwareStatusNotification()

    async def send_call(self, action, payload):
        """A CS -> CP call from stdin; its answer (or CALLERROR) goes to stdout."""
        try:
            request = getattr(call, action)(**to_python(payload))
        except (AttributeError, TypeError) as error:
            emit({"kind": "error", "cp": self.id, "action": action, "code": "BadCommand",
                  "description": str(error)})
            return
        unique_id = str(uuid.uuid4())
        self.own_ids.add(unique_id)
        try:
            result = await self.call(request, suppress=False, unique_id=unique_id)
            emit({"kind": "result", "cp": self.id, "action": action, "payload": to_wire(result)})
        except asyncio.TimeoutError as error:
            emit({"kind": "error", "cp": self.id, "action": action, "code": "Timeout",
                  "description": str(error)})
        except Exception as error:  # a CALLERROR arrives as an exception of its code's class
            emit({"kind": "error", "cp": self.id, "action": action,
                  "code": getattr(error, "code", type(error).__name__),
                  "description": getattr(error, "description", str(error))})
        finally:
            self.own_ids.discard(unique_id)

    async def send_raw(self, text):
        """A raw frame; the answer to it is logged as raw_reply instead of being routed."""
        try:
            frame = json.loads(text)
            raw_id = frame[1] if isinstance(frame, list) and len(frame) > 1 else None
        except (ValueError, KeyError, TypeError):
            raw_id = None
        if isinstance(raw_id, str):
            self.raw_ids.add(raw_id)
        else:
            self.raw_unidentified += 1
        await self._connection.send(text)

    async def route_message(self, raw_msg):
        try:
            frame = json.loads(raw_msg)
        except ValueError:
            frame = None
        if isinstance(frame, list) and len(frame) > 1 and frame[0] in (3, 4) \
                and frame[1] not in self.own_ids:
            if frame[1] in self.raw_ids or self.raw_unidentified > 0:
                if frame[1] in self.raw_ids:
                    self.raw_ids.discard(frame[1])
                else:
                    self.raw_unidentified -= 1
                emit({"kind": "raw_reply", "cp": self.id, "text": raw_msg})
                return
        await super().route_message(raw_msg)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--basic-auth")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--client-ca")
    parser.add_argument("--heartbeat", type=int, default=10)
    args = parser.parse_args()
    CentralSystem.heartbeat_s = args.heartbeat
    CentralSystem.counter = [1001]
    sessions = {}

    async def process_request(connection, request):
        if args.basic_auth:
            wanted = "Basic " + base64.b64encode(args.basic_auth.encode()).decode()
            if request.headers.get("Authorization") != wanted:
                return connection.respond(401, "unauthorized\n")
        return None

    async def on_connect(websocket):
        cp_id = websocket.request.path.strip("/")
        if websocket.subprotocol != "ocpp1.6":
            await websocket.close(1002, "subprotocol ocpp1.6 required")
            return
        cp = CentralSystem(cp_id, websocket, response_timeout=10)
        cp.own_ids = set()
        cp.raw_ids = set()
        cp.raw_unidentified = 0
        sessions[cp_id] = cp
        emit({"kind": "connected", "cp": cp_id})
        try:
            await cp.start()
        except websockets.ConnectionClosed:
            pass
        finally:
            if sessions.get(cp_id) is cp:
                del sessions[cp_id]
            emit({"kind": "disconnected", "cp": cp_id})

    async def read_stdin():
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            try:
                command = json.loads(line)
                cp = sessions[command["cp"]]
            except (ValueError, KeyError, TypeError) as error:
                emit({"kind": "error", "cp": None, "action": None, "code": "BadCommand",
                      "description": f"{error}: {line!r}"})
                continue
            if "raw" in command:
                asyncio.create_task(cp.send_raw(command["raw"]))
            else:
                asyncio.create_task(cp.send_call(command["action"], command.get("payload", {})))

    tls = None
    if args.tls_cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
        if args.client_ca:
            tls.verify_mode = ssl.CERT_REQUIRED
            tls.load_verify_locations(args.client_ca)
    server = await websockets.serve(
        on_connect, "127.0.0.1", args.port, subprotocols=["ocpp1.6"],
        process_request=process_request, ssl=tls, ping_interval=None,
    )
    port = server.sockets[0].getsockname()[1]
    emit({"kind": "listening", "port": port})
    await read_stdin()
    # stdin closed: the test is gone.
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
