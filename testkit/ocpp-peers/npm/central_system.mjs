// An OCPP 1.6-J central system on the npm package `ocpp-rpc` (by mikuso) in strict mode: every
// CALL and every answer, in both directions, is checked against the OCPP 1.6 JSON schemas that
// ship with the package. It is the second independent peer (beside the PyPI `ocpp` one in
// ../python/) that the bridge's OCPP adapter is tested and measured against, and it speaks the
// peer protocol of ../README.md: JSON lines on stdout for what happens, JSON lines on stdin for
// what to send.
//
// Started as
//   node central_system.mjs [--port 0] [--basic-auth user:pass] [--tls-cert F --tls-key F
//                           [--client-ca F]] [--heartbeat S] [--quiet] [--stats-ms MS]
// Its first stdout line is {"kind":"listening","port":N}.

import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import ocppRpc from 'ocpp-rpc';

const { RPCServer } = ocppRpc;
// The OCPP 1.6 schemas strict mode checks against; a stdin CALL whose action has none is a
// bad command, not something to send.
const require = createRequire(import.meta.url);
const schemaIds = new Set(require('ocpp-rpc/lib/schemas/ocpp1_6.json').map((schema) => schema.$id));

const MSG_CALL = 2;
const MSG_CALLERROR = 4;

// ocpp-rpc's validator names two codes as OCPP 2.0.1 does; OCPP-J 1.6 (errata v1.0 section 5)
// spells them like this, and so do the CALLERRORs ocpp-rpc sends on a 1.6 connection.
const OCPP16_CODE = { FormatViolation: 'FormationViolation', OccurenceConstraintViolation: 'OccurrenceConstraintViolation' };
const ocpp16Code = (code) => OCPP16_CODE[code] ?? code;

const usage = `usage: central_system.mjs [--port N] [--basic-auth user:pass] [--tls-cert F --tls-key F [--client-ca F]]
                         [--heartbeat S] [--quiet] [--stats-ms MS]`;

function fail(message) {
  process.stderr.write(`central_system: ${message}\n${usage}\n`);
  process.exit(2);
}

function parseOptions(argv) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        port: { type: 'string', default: '0' },
        'basic-auth': { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'client-ca': { type: 'string' },
        heartbeat: { type: 'string', default: '10' },
        quiet: { type: 'boolean', default: false },
        'stats-ms': { type: 'string', default: '1000' },
      },
      strict: true,
    }));
  } catch (err) {
    fail(err.message);
  }
  const integer = (name, min, max) => {
    const text = values[name];
    const n = Number(text);
    if (!/^[0-9]+$/.test(text) || n < min || n > max) fail(`--${name} ${text}: a whole number ${min}..${max}`);
    return n;
  };
  let basicAuth = null;
  if (values['basic-auth'] !== undefined) {
    const text = values['basic-auth'];
    const colon = text.indexOf(':');
    if (colon < 1) fail('--basic-auth wants user:pass');
    basicAuth = { user: text.slice(0, colon), password: text.slice(colon + 1) };
  }
  const cert = values['tls-cert'];
  const key = values['tls-key'];
  if ((cert === undefined) !== (key === undefined)) fail('--tls-cert and --tls-key go together');
  if (values['client-ca'] !== undefined && cert === undefined) fail('--client-ca needs --tls-cert and --tls-key');
  return {
    port: integer('port', 0, 65535),
    basicAuth,
    tls: cert === undefined ? null : { cert, key, clientCa: values['client-ca'] },
    heartbeatS: integer('heartbeat', 0, 86400),
    quiet: values.quiet,
    statsMs: integer('stats-ms', 50, 3600000),
  };
}

const options = parseOptions(process.argv.slice(2));

function emit(line) {
  process.stdout.write(JSON.stringify(line) + '\n');
}

// What the bench and a --quiet run read: totals, and the wall-clock times of the first and the
// latest accepted BootNotification (so a boot storm is timed to the millisecond without one
// line per charge point).
const stats = {
  connected: 0,
  connects: 0,
  disconnects: 0,
  boots: 0,
  firstBootMs: null,
  lastBootMs: null,
  callsIn: 0,
  framesIn: 0,
  framesOut: 0,
  invalid: 0,
};
let statsPrinted = '';

function printStats() {
  const line = {
    kind: 'stats',
    t_ms: Date.now(),
    connected: stats.connected,
    connects: stats.connects,
    disconnects: stats.disconnects,
    boots: stats.boots,
    first_boot_ms: stats.firstBootMs,
    last_boot_ms: stats.lastBootMs,
    calls_in: stats.callsIn,
    frames_in: stats.framesIn,
    frames_out: stats.framesOut,
    invalid: stats.invalid,
  };
  const { t_ms: _, ...counts } = line;
  const key = JSON.stringify(counts);
  if (key === statsPrinted) return;
  statsPrinted = key;
  emit(line);
}

// --- answers to the charge point's calls -------------------------------------------------------

let nextTransactionId = 1001;
const accepted = () => ({ status: 'Accepted' });
const now = () => new Date().toISOString();

const answers = {
  BootNotification: () => ({ status: 'Accepted', currentTime: now(), interval: options.heartbeatS }),
  Heartbeat: () => ({ currentTime: now() }),
  Authorize: () => ({ idTagInfo: accepted() }),
  StartTransaction: () => ({ transactionId: nextTransactionId++, idTagInfo: accepted() }),
  StopTransaction: () => ({ idTagInfo: accepted() }),
  StatusNotification: () => ({}),
  MeterValues: () => ({}),
  DataTransfer: () => accepted(),
  DiagnosticsStatusNotification: () => ({}),
  FirmwareStatusNotification: () => ({}),
};

// --- sessions ------------------------------------------------------------------------------------

/** identity -> RPCServerClient of the charge point's current connection */
const sessions = new Map();

function attach(client) {
  const cp = client.identity;
  const previous = sessions.get(cp);
  sessions.set(cp, client);
  // A charge point that reconnects before its old socket timed out replaces it.
  if (previous) previous.close({ code: 1000, reason: 'replaced by a new connection' }).catch(() => {});
  stats.connected += 1;
  stats.connects += 1;
  if (!options.quiet) emit({ kind: 'connected', cp });

  for (const [action, answer] of Object.entries(answers)) {
    client.handle(action, ({ params }) => {
      stats.callsIn += 1;
      if (action === 'BootNotification') {
        stats.boots += 1;
        stats.lastBootMs = Date.now();
        stats.firstBootMs ??= stats.lastBootMs;
      }
      if (!options.quiet) emit({ kind: 'recv', cp, action, payload: params });
      return answer(params);
    });
  }
  // No wildcard handler: ocpp-rpc answers an action it has no handler for with NotImplemented.

  client.on('message', ({ message, outbound }) => {
    if (outbound) {
      stats.framesOut += 1;
      return;
    }
    stats.framesIn += 1;
    noteReply(client, cp, message.toString());
  });
  client.on('strictValidationFailure', ({ method, params, result, error, outbound, isCall }) => {
    stats.invalid += 1;
    // In: the charge point sent a CALL or an answer the schema refuses (a CALL is answered
    // with that CALLERROR by ocpp-rpc; an answer ends the awaited call with an "error" line).
    // Out: a CALL from stdin the schema refuses (not sent; "error" line too), or one of this
    // peer's own answers (replaced by InternalError; a bug here, never expected).
    emit({
      kind: 'invalid',
      cp,
      action: method,
      direction: outbound ? 'out' : 'in',
      message: isCall ? 'call' : 'result',
      payload: isCall ? params : result,
      code: ocpp16Code(error.rpcErrorCode ?? 'FormatViolation'),
      description: error.message,
    });
  });
  client.on('badMessage', ({ buffer, error }) => {
    if (isRawReply(client, parseFrame(buffer.toString()))) return;
    emit({ kind: 'bad_message', cp, text: buffer.toString(), description: error.message });
  });
  client.once('close', () => {
    if (sessions.get(cp) === client) sessions.delete(cp);
    stats.connected -= 1;
    stats.disconnects += 1;
    if (!options.quiet) emit({ kind: 'disconnected', cp });
  });
}

function parseFrame(text) {
  try {
    const frame = JSON.parse(text);
    return Array.isArray(frame) ? frame : null;
  } catch {
    return null;
  }
}

// A CALLRESULT or CALLERROR that answers none of ocpp-rpc's own calls answers a raw frame from
// stdin (or a call that already timed out): it is logged verbatim as raw_reply, and ocpp-rpc's
// complaint about it (a "badMessage") is not.
function isRawReply(client, frame) {
  return frame !== null && frame[0] !== MSG_CALL && !client._pendingCalls.has(frame[1]);
}

// ocpp-rpc turns a CALLERROR with a code it does not know into GenericError; the error line
// reports the code and description as they came over the wire. One CALL is outstanding at a
// time (callConcurrency 1), so the latest CALLERROR belongs to the call being awaited.
const wireErrors = new WeakMap();

function noteReply(client, cp, text) {
  const frame = parseFrame(text);
  if (isRawReply(client, frame)) {
    emit({ kind: 'raw_reply', cp, text });
  } else if (frame !== null && frame[0] === MSG_CALLERROR) {
    wireErrors.set(client, { code: String(frame[2]), description: String(frame[3] ?? '') });
  }
}

// --- stdin: CS -> CP calls and raw frames ------------------------------------------------------

async function callFromStdin(client, cp, action, payload) {
  try {
    const result = await client.call(action, payload);
    wireErrors.delete(client);
    emit({ kind: 'result', cp, action, payload: result });
  } catch (err) {
    // From the wire: the charge point's CALLERROR. Otherwise local: the payload or the answer
    // failed the schema (an "invalid" line says which), a timeout or a lost connection.
    const wire = wireErrors.get(client);
    wireErrors.delete(client);
    const local = {
      code: ocpp16Code(err.rpcErrorCode ?? (err.constructor.name === 'TimeoutError' ? 'Timeout' : 'GenericError')),
      description: err.message || err.rpcErrorMessage || '',
    };
    emit({ kind: 'error', cp, action, ...(wire ?? local) });
  }
}

function badCommand(cp, action, description) {
  emit({ kind: 'error', cp, action, code: 'BadCommand', description });
}

function onStdinLine(line) {
  if (!line.trim()) return;
  let command;
  try {
    command = JSON.parse(line);
  } catch (err) {
    badCommand(null, null, `${err.message}: ${line}`);
    return;
  }
  if (command === null || typeof command !== 'object') {
    badCommand(null, null, `not an object: ${line}`);
    return;
  }
  const cp = typeof command.cp === 'string' ? command.cp : null;
  const action = typeof command.action === 'string' ? command.action : null;
  const client = cp === null ? undefined : sessions.get(cp);
  if (!client) {
    badCommand(cp, action, `no charge point ${JSON.stringify(command.cp)} is connected: ${line}`);
  } else if (typeof command.raw === 'string') {
    client.sendRaw(command.raw);
  } else if (action === null) {
    badCommand(cp, null, `wants "action" (a string) or "raw" (a string): ${line}`);
  } else if (!schemaIds.has(`urn:${action}.req`)) {
    badCommand(cp, action, `${action} is not an OCPP 1.6 action`);
  } else {
    callFromStdin(client, cp, action, command.payload ?? {});
  }
}

// --- server --------------------------------------------------------------------------------------

const server = new RPCServer({
  protocols: ['ocpp1.6'],
  strictMode: true,
  callConcurrency: 1, // OCPP-J: one outstanding CALL per direction and connection
  callTimeoutMs: 10000, // as the PyPI peer's response_timeout
});

server.auth((accept, reject, handshake) => {
  if (!handshake.protocols.has('ocpp1.6')) {
    reject(400, 'subprotocol ocpp1.6 required');
    return;
  }
  if (options.basicAuth && !credentialsMatch(handshake)) {
    reject(401, 'Unauthorized');
    return;
  }
  accept({}, 'ocpp1.6');
});

// The user `{cp}` stands for the connecting identity (OCPP's rule: the basic-auth user is the
// charge point's identity); any other user must match literally.
function credentialsMatch(handshake) {
  const header = handshake.headers.authorization ?? '';
  const match = /^\s*basic\s+([A-Za-z0-9+/=._~-]+)\s*$/i.exec(header);
  if (!match) return false;
  const { user, password } = options.basicAuth;
  const expected = `${user === '{cp}' ? handshake.identity : user}:${password}`;
  return Buffer.from(match[1], 'base64').toString('utf8') === expected;
}

server.on('client', attach);
server.on('error', (err) => emit({ kind: 'server_error', description: err.message }));
server.on('upgradeAborted', ({ identity, error }) => {
  if (!options.quiet) emit({ kind: 'rejected', cp: identity, description: error?.message ?? '' });
});

function notFound(_request, response) {
  response.statusCode = 404;
  response.end();
}

const httpServer = options.tls
  ? createHttpsServer(
      {
        cert: readFileSync(options.tls.cert),
        key: readFileSync(options.tls.key),
        ...(options.tls.clientCa
          ? { ca: readFileSync(options.tls.clientCa), requestCert: true, rejectUnauthorized: true }
          : {}),
      },
      notFound,
    )
  : createHttpServer(notFound);
httpServer.on('upgrade', server.handleUpgrade);
// Sockets of 1,000 charge points connecting at once: keep the accept queue deep enough.
httpServer.listen({ port: options.port, host: '127.0.0.1', backlog: 4096 }, () => {
  emit({ kind: 'listening', port: httpServer.address().port });
  if (options.quiet) setInterval(printStats, options.statsMs).unref();
});
httpServer.on('error', (err) => fail(`cannot listen: ${err.message}`));

// The test that started the peer holds its stdin; when that closes, the test is gone.
createInterface({ input: process.stdin }).on('line', onStdinLine).on('close', shutdown);

function shutdown() {
  if (options.quiet) printStats();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
