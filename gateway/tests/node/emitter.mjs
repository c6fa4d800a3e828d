#!/usr/bin/env node
// Interop check: the official @socket.io/redis-emitter (pinned in package.json) publishing
// into the gateways' Redis, observed by official socket.io-clients on every instance.
//
// Usage:
//   node emitter.mjs --redis-url redis://127.0.0.1:PORT --timeout-ms 20000 \
//       --client NAME=URL=TOKEN [--client ...]
//
// Each client connects with `auth: {token}` and joins the room "general" of its own tenant
// (the `join` event). The script then runs, in order and with a pause after each so that
// what it causes has arrived everywhere:
//   1. emit "news" {step: 1} to t:acme:r:general
//   2. emit "news" {step: 2} to t:acme:r:general except t:acme:u:bob
//   3. emit "announce" {step: 3} to the whole namespace
//   4. socketsJoin t:acme:r:ops for the sockets in t:acme:u:carol, then emit {step: 4} there;
//      carol sends a `message` to "ops" (acked as a member: acks.joined), then socketsLeave
//      t:acme:r:ops for her and she tries again (acks.left)
//   5. emit {step: 5} to the raw room "general" (not a tenant-scoped name) and to
//      t:acme:r:general: refused as a whole
//   6. socketsJoin t:globex:r:general for t:acme:u:alice (crosses tenants), then emit
//      {step: 6} to t:globex:r:general
//   7. serverSideEmit("ping") (nothing to deliver)
//   8. disconnectSockets for t:acme:u:bob
//   9. emit "binary" with a Buffer to t:acme:r:general {step: 9}
//
// Prints exactly one JSON line on stdout:
//   {"ok":true,"received":{"NAME":[{"event":"news","step":1},...]},"disconnected":{"NAME":"reason"},
//    "acks":{"joined":{...},"left":{...}}}
//   {"ok":false,"error":"..."}                                       (exit 1)

import { parseArgs } from "node:util";
import { Emitter } from "@socket.io/redis-emitter";
import { Redis } from "ioredis";
import { io } from "socket.io-client";

const { values } = parseArgs({
  options: {
    "redis-url": { type: "string" },
    client: { type: "string", multiple: true },
    "timeout-ms": { type: "string", default: "20000" },
    "pause-ms": { type: "string", default: "400" },
  },
});

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
// The ack of `event`, or {timeout: true} when none comes within 5 s.
const ack = (socket, event, data) =>
  socket.timeout(5000).emitWithAck(event, data).catch(() => ({ timeout: true }));
const pauseMs = Number(values["pause-ms"]);
const sockets = [];
let redis;

function finish(summary, code) {
  for (const socket of sockets) socket.disconnect();
  redis?.disconnect();
  process.stdout.write(JSON.stringify(summary) + "\n");
  process.exit(code);
}

const deadline = setTimeout(
  () => finish({ ok: false, error: "timed out" }, 1),
  Number(values["timeout-ms"]),
);
deadline.unref();

function connect(name, url, token) {
  return new Promise((resolve, reject) => {
    const socket = io(url, {
      auth: { token },
      transports: ["websocket"],
      reconnection: false,
    });
    sockets.push(socket);
    const client = { name, socket, received: [], disconnected: null };
    for (const event of ["news", "announce", "binary"]) {
      socket.on(event, (data, extra) => {
        const entry = { event, step: data?.step ?? null };
        if (extra !== undefined) entry.extra = Buffer.isBuffer(extra) ? [...extra] : extra;
        client.received.push(entry);
      });
    }
    socket.on("disconnect", (reason) => {
      client.disconnected = reason;
    });
    socket.once("connect_error", (err) => reject(new Error(`${name}: ${err.message}`)));
    socket.once("welcome", () => {
      socket.emit("join", { room: "general" }, (reply) => {
        if (reply?.ok) resolve(client);
        else reject(new Error(`${name} could not join: ${JSON.stringify(reply)}`));
      });
    });
  });
}

try {
  const clients = await Promise.all(
    (values.client ?? []).map((spec) => {
      // URLs and base64url tokens have no '='.
      const parts = spec.split("=");
      if (parts.length !== 3) throw new Error(`bad --client ${spec}: NAME=URL=TOKEN`);
      const [name, url, token] = parts;
      return connect(name, url, token);
    }),
  );
  redis = new Redis(values["redis-url"], { lazyConnect: false, maxRetriesPerRequest: 1 });
  const emitter = new Emitter(redis);

  emitter.to("t:acme:r:general").emit("news", { step: 1 });
  await pause(pauseMs);
  emitter.to("t:acme:r:general").except("t:acme:u:bob").emit("news", { step: 2 });
  await pause(pauseMs);
  emitter.emit("announce", { step: 3 });
  await pause(pauseMs);
  emitter.in("t:acme:u:carol").socketsJoin("t:acme:r:ops");
  await pause(pauseMs);
  emitter.to("t:acme:r:ops").emit("news", { step: 4 });
  await pause(pauseMs);
  const acks = {};
  const carol = clients.find((client) => client.name === "carol");
  if (carol) {
    acks.joined = await ack(carol.socket, "message", { room: "ops", text: "carol, joined by the emitter" });
    emitter.in("t:acme:u:carol").socketsLeave("t:acme:r:ops");
    await pause(pauseMs);
    acks.left = await ack(carol.socket, "message", { room: "ops", text: "carol, out again" });
  }
  emitter.to(["general", "t:acme:r:general"]).emit("news", { step: 5 });
  await pause(pauseMs);
  emitter.in("t:acme:u:alice").socketsJoin("t:globex:r:general");
  await pause(pauseMs);
  emitter.to("t:globex:r:general").emit("news", { step: 6 });
  await pause(pauseMs);
  emitter.serverSideEmit("ping");
  await pause(pauseMs);
  emitter.in("t:acme:u:bob").disconnectSockets();
  await pause(pauseMs);
  emitter.to("t:acme:r:general").emit("binary", { step: 9 }, Buffer.from([1, 2, 3]));
  await pause(pauseMs * 2);

  const received = {};
  const disconnected = {};
  for (const client of clients) {
    received[client.name] = client.received;
    disconnected[client.name] = client.disconnected;
  }
  finish({ ok: true, received, disconnected, acks }, 0);
} catch (err) {
  finish({ ok: false, error: String(err?.message ?? err) }, 1);
}
