#!/usr/bin/env node
// Interop check: the official socket.io-client (pinned in package.json) against
// the gateway. Two clients (A and B, possibly on two different gateway nodes)
// join a room, exchange messages both ways, check error acks and the transport.
//
// Usage:
//   node chat.mjs --a http://127.0.0.1:PORT_A --b http://127.0.0.1:PORT_B \
//       --transport websocket|polling [--transport-b websocket|polling] \
//       [--local-a IP --local-b IP] [--room NAME] [--timeout-ms 10000] \
//       [--token-a=TOKEN --token-b=TOKEN [--cookie]]
//
// --transport-b gives client B its own transport (default: --transport); --local-a/-b bind
// each client's connections to a source address (a proxy hashing by client address, like
// nginx's `hash $remote_addr`, then sees two clients).
//
// Gateways with Redis need a session for every socket: log in first (POST /api/login)
// and pass each client's token; it is sent as `auth: {token}`, which works over both
// transports (write `--token-a=TOKEN`: a base64url token may start with '-'). Without
// tokens (a standalone gateway) the clients connect anonymously. With --cookie the tokens
// travel as the session cookie instead (`extraHeaders: {cookie}`), as a browser's would.
//
// Prints exactly one JSON line on stdout:
//   {"ok":true,"transport":"...","transport_b":"...","a_sid":"...","b_sid":"...",
//    "a_instance":"...","b_instance":"...","roundtrip_ms":N}                     (exit 0)
//   {"ok":false,"error":"..."}                                                  (exit 1)
// Diagnostics, if any, go to stderr.

import { parseArgs } from "node:util";
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { Agent } from "node:http";
import { io } from "socket.io-client";

const TRANSPORTS = ["websocket", "polling"];

let clients = [];
let finished = false;

// Disconnects both clients and resolves once their engine.io connections are
// closed (so the server sees a clean "client namespace disconnect", notably on
// polling where the close packet is an HTTP request of its own), or after
// graceMs at most.
function disconnectAll(graceMs = 500) {
  const closed = [];
  for (const s of clients) {
    try {
      const engine = s.io?.engine;
      if (engine && engine.readyState !== "closed") {
        closed.push(new Promise((resolve) => engine.once("close", resolve)));
      }
      s.disconnect();
    } catch {
      // ignore: we are leaving anyway
    }
  }
  let timer;
  const grace = new Promise((resolve) => {
    timer = setTimeout(resolve, graceMs);
  });
  return Promise.race([Promise.all(closed), grace]).finally(() => clearTimeout(timer));
}

function finish(code, summary) {
  if (finished) return;
  finished = true;
  // Should anything below stall, do not hang.
  setTimeout(() => process.exit(code), 2000).unref();
  disconnectAll().then(() => {
    process.stdout.write(JSON.stringify(summary) + "\n", () => process.exit(code));
  });
}

function fail(err) {
  const msg = err instanceof Error ? err.message : String(err);
  finish(1, { ok: false, error: msg });
}

process.on("uncaughtException", (e) => fail(`uncaught exception: ${e?.stack ?? e}`));
process.on("unhandledRejection", (e) => fail(`unhandled rejection: ${e?.stack ?? e}`));

function parseCli() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        a: { type: "string" },
        b: { type: "string" },
        transport: { type: "string" },
        "transport-b": { type: "string" },
        "local-a": { type: "string" },
        "local-b": { type: "string" },
        room: { type: "string" },
        "timeout-ms": { type: "string", default: "10000" },
        "token-a": { type: "string" },
        "token-b": { type: "string" },
        cookie: { type: "boolean", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw new Error(`bad arguments: ${e.message}`);
  }
  if (!values.a || !values.b) throw new Error("bad arguments: --a and --b are required");
  if (!TRANSPORTS.includes(values.transport)) {
    throw new Error(`bad arguments: --transport must be one of ${TRANSPORTS.join("|")}`);
  }
  const transportB = values["transport-b"] ?? values.transport;
  if (!TRANSPORTS.includes(transportB)) {
    throw new Error(`bad arguments: --transport-b must be one of ${TRANSPORTS.join("|")}`);
  }
  const timeoutMs = Number(values["timeout-ms"]);
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new Error("bad arguments: --timeout-ms must be a positive number");
  }
  const room = values.room ?? `node-${values.transport}-${randomBytes(4).toString("hex")}`;
  return {
    a: values.a,
    b: values.b,
    transport: values.transport,
    transportB,
    localA: values["local-a"],
    localB: values["local-b"],
    room,
    timeoutMs,
    tokenA: values["token-a"],
    tokenB: values["token-b"],
    cookie: values.cookie,
  };
}

class Step extends Error {
  constructor(step, msg) {
    super(`${step}: ${msg}`);
  }
}

function main() {
  const opts = parseCli();
  // Per-step waits end slightly before the overall timer, so a stalled step
  // is reported by name rather than as a bare overall timeout.
  const margin = Math.min(250, Math.floor(opts.timeoutMs / 10));
  const deadline = Date.now() + opts.timeoutMs - margin;
  const remaining = () => Math.max(1, deadline - Date.now());

  // Overall timer: whatever happens, never run past the timeout. It is kept
  // ref'd on purpose, so the process cannot silently exit early either;
  // finish() ends the process with process.exit().
  setTimeout(() => fail(`overall timeout after ${opts.timeoutMs} ms`), opts.timeoutMs);

  // A source address (`--local-a/-b`) goes through an http.Agent for long-polling and
  // `localAddress` for the websocket, so a proxy hashing by address can tell the clients apart.
  const mk = (url, name, token, transport, local) =>
    io(url, {
      transports: [transport],
      upgrade: transport === "websocket",
      ...(local ? { agent: new Agent({ keepAlive: true, localAddress: local }), localAddress: local } : {}),
      reconnection: false,
      // Two clients may point at the same URL: never share one Manager/connection.
      forceNew: true,
      timeout: opts.timeoutMs,
      auth: token === undefined || opts.cookie ? { name } : { name, token },
      extraHeaders: token !== undefined && opts.cookie ? { cookie: `gw_session=${token}` } : {},
    });

  const A = mk(opts.a, "alice", opts.tokenA, opts.transport, opts.localA);
  const B = mk(opts.b, "bob", opts.tokenB, opts.transportB, opts.localB);
  clients = [A, B];
  const expectedTransport = new Map([[A, opts.transport], [B, opts.transportB]]);
  // The instance serving each client, from the gateway's `welcome` event.
  const instances = new Map();
  for (const s of [A, B]) s.on("welcome", (w) => instances.set(s, w?.instance));

  // Buffer every `message` event per client, so nothing is lost between an
  // emit and the moment we start waiting for the broadcast.
  const inbox = new Map([[A, []], [B, []]]);
  const waiters = new Map([[A, []], [B, []]]);
  for (const [s, label] of [[A, "A"], [B, "B"]]) {
    s.on("message", (payload) => {
      inbox.get(s).push(payload);
      for (const w of [...waiters.get(s)]) w();
    });
    s.on("disconnect", (reason) => {
      if (!finished) process.stderr.write(`client ${label} disconnected: ${reason}\n`);
    });
  }

  function waitMessage(s, label, pred, step) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = inbox.get(s).find(pred);
        if (hit) {
          cleanup();
          resolve(hit);
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        cleanup();
        let seen = JSON.stringify(inbox.get(s));
        if (seen.length > 500) seen = seen.slice(0, 500) + "...";
        reject(new Step(step, `client ${label} did not receive the expected message (got ${seen})`));
      }, remaining());
      const cleanup = () => {
        clearTimeout(timer);
        const ws = waiters.get(s);
        const i = ws.indexOf(check);
        if (i >= 0) ws.splice(i, 1);
      };
      waiters.get(s).push(check);
      check();
    });
  }

  function waitConnect(s, label) {
    return new Promise((resolve, reject) => {
      if (s.connected) return resolve();
      const timer = setTimeout(
        () => reject(new Step("connect", `client ${label} did not connect in time`)),
        remaining(),
      );
      s.once("connect", () => {
        clearTimeout(timer);
        resolve();
      });
      s.once("connect_error", (err) => {
        clearTimeout(timer);
        reject(new Step("connect", `client ${label} connect_error: ${err?.message ?? err}`));
      });
    });
  }

  async function ack(s, label, step, event, payload) {
    try {
      return await s.timeout(remaining()).emitWithAck(event, payload);
    } catch (e) {
      throw new Step(step, `client ${label} ${event} got no ack: ${e?.message ?? e}`);
    }
  }

  function expectMessageAck(res, label, step) {
    if (!res || typeof res !== "object") {
      throw new Step(step, `client ${label} message ack is not an object: ${JSON.stringify(res)}`);
    }
    if (typeof res.id !== "string" || res.id.length === 0) {
      throw new Step(step, `client ${label} message ack has no id: ${JSON.stringify(res)}`);
    }
    if (typeof res.ts !== "number" || !Number.isFinite(res.ts)) {
      throw new Step(step, `client ${label} message ack has no numeric ts: ${JSON.stringify(res)}`);
    }
    return res;
  }

  // Sends from `src` and checks `dst` gets the broadcast. Returns elapsed ms.
  async function exchange(src, srcLabel, dst, dstLabel, text, step) {
    const t0 = performance.now();
    const res = expectMessageAck(
      await ack(src, srcLabel, step, "message", { room: opts.room, text }),
      srcLabel,
      step,
    );
    const msg = await waitMessage(dst, dstLabel, (m) => m && m.id === res.id, step);
    const elapsed = performance.now() - t0;
    const bad = (why) =>
      new Step(step, `client ${dstLabel} got a bad message (${why}): ${JSON.stringify(msg)}`);
    if (msg.room !== opts.room) throw bad("room");
    if (msg.text !== text) throw bad("text");
    if (typeof msg.from !== "string" || msg.from.length === 0) throw bad("from");
    if (typeof msg.ts !== "number" || !Number.isFinite(msg.ts)) throw bad("ts");
    return elapsed;
  }

  function checkTransport(s, label, step) {
    const name = s.io?.engine?.transport?.name;
    const expected = expectedTransport.get(s);
    if (name !== expected) {
      throw new Step(step, `client ${label} is on transport ${name}, expected ${expected}`);
    }
  }

  async function run() {
    // 0. connect
    await Promise.all([waitConnect(A, "A"), waitConnect(B, "B")]);
    checkTransport(A, "A", "connect");
    checkTransport(B, "B", "connect");

    // 1. both join
    const [ja, jb] = await Promise.all([
      ack(A, "A", "join", "join", { room: opts.room }),
      ack(B, "B", "join", "join", { room: opts.room }),
    ]);
    for (const [res, label] of [[ja, "A"], [jb, "B"]]) {
      if (!res || res.ok !== true) {
        throw new Step("join", `client ${label} join ack is not {ok:true}: ${JSON.stringify(res)}`);
      }
    }

    // 2. A -> B
    const roundtrip = await exchange(A, "A", B, "B", "hello from A", "message A->B");
    // 3. B -> A
    await exchange(B, "B", A, "A", "hello from B", "message B->A");

    // 4. invalid joins get an error ack and the connection survives
    const invalid = [
      [A, "A", ""],
      [B, "B", "x".repeat(500)],
    ];
    for (const [s, label, room] of invalid) {
      const step = `invalid join (${room.length}-char room)`;
      const res = await ack(s, label, step, "join", { room });
      if (!res || typeof res.error !== "string" || res.error.length === 0) {
        throw new Step(step, `client ${label} expected an error ack, got ${JSON.stringify(res)}`);
      }
      if (res.ok === true) {
        throw new Step(step, `client ${label} error ack also says ok:true: ${JSON.stringify(res)}`);
      }
    }
    for (const [s, label] of [[A, "A"], [B, "B"]]) {
      const step = "after invalid join";
      if (!s.connected) throw new Step(step, `client ${label} is no longer connected`);
      expectMessageAck(
        await ack(s, label, step, "message", { room: opts.room, text: `still here (${label})` }),
        label,
        step,
      );
      if (!s.connected) throw new Step(step, `client ${label} is no longer connected`);
    }

    // 5. transport is still the requested one
    checkTransport(A, "A", "final transport check");
    checkTransport(B, "B", "final transport check");

    return {
      ok: true,
      transport: opts.transport,
      transport_b: opts.transportB,
      a_sid: A.id,
      b_sid: B.id,
      a_instance: instances.get(A) ?? null,
      b_instance: instances.get(B) ?? null,
      roundtrip_ms: Math.round(roundtrip * 1000) / 1000,
    };
  }

  run().then((summary) => finish(0, summary), fail);
}

try {
  main();
} catch (e) {
  fail(e);
}
