#!/usr/bin/env node
// Benchmark peer: the gateway's chat protocol (see /README.md, "Chat protocol") on the stack
// our users run today: socket.io 4.8 + the classic (non-sharded) @socket.io/redis-adapter 8.3
// over two ioredis clients, with default adapter and engine options.
//
// Usage:
//   node server.mjs [--port 3000] [--host 127.0.0.1] [--redis-url redis://127.0.0.1:6379]
//                   [--bench-endpoints]
// Flags win over the environment: PORT, HOST, REDIS_URL, BENCH_ENDPOINTS=1.
//
// --bench-endpoints (for benchmarks only) also serves POST /bench/burst {room, count}: emits
// `count` chat `message` broadcasts to the room back to back with io.to(room).emit(...), as
// application code does (it returns at once: nothing to await), and answers
// {emitted, failed, elapsed_ms} (elapsed_ms: the loop's own time). Each text is the load
// tester's probe "0:<seq>:<µs since the loop started>:" (loadtest `burst`); a `tenant` field,
// which our gateway reads, is ignored.
//
// Prints one JSON line on stdout once it listens:
//   {"listening":"127.0.0.1:3000","instance":"…","redis":"redis://…"}
// Diagnostics go to stderr. SIGTERM / SIGINT close Socket.IO, quit Redis and exit.

import http from "node:http";
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { Redis } from "ioredis";

function config() {
  const { values } = parseArgs({
    options: {
      port: { type: "string" },
      host: { type: "string" },
      "redis-url": { type: "string" },
      "bench-endpoints": { type: "boolean" },
    },
    strict: true,
    allowPositionals: false,
  });
  const port = Number(values.port ?? process.env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`invalid port: ${values.port ?? process.env.PORT}`);
  }
  return {
    port,
    host: values.host ?? process.env.HOST ?? "127.0.0.1",
    redisUrl: values["redis-url"] ?? process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
    benchEndpoints: values["bench-endpoints"] ?? ["1", "true"].includes(process.env.BENCH_ENDPOINTS ?? ""),
  };
}

// ---- validation, the same rules as the gateway ----

const ROOM_RE = /^[A-Za-z0-9_.:-]{1,64}$/;
const TEXT_MAX = 2000;
// Unicode Cc (control) characters other than \t and \n.
const TEXT_FORBIDDEN = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/;

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const validRoom = (room) => typeof room === "string" && ROOM_RE.test(room);

function textError(text) {
  if (typeof text !== "string" || text.length === 0) return "invalid text";
  // .length counts UTF-16 units; count code points only when it could matter.
  if (text.length > TEXT_MAX && [...text].length > TEXT_MAX) return "invalid text";
  if (TEXT_FORBIDDEN.test(text)) return "invalid text";
  return null;
}

// Splits a handler's arguments into (payload, ack): the ack callback, when the client asked
// for one, is always the last argument, even when no payload was sent.
function split(args) {
  const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
  return [args[0], ack];
}

function reply(ack, value) {
  if (ack) ack(value);
}

// Runs an event handler so that nothing a client sends can throw out of it.
function guarded(name, fn) {
  return (...args) => {
    const [payload, ack] = split(args);
    try {
      fn(payload, ack);
    } catch (err) {
      process.stderr.write(`${name} handler failed: ${err?.stack ?? err}\n`);
      try {
        reply(ack, { error: "internal error" });
      } catch {
        // the ack was already sent or the socket is gone
      }
    }
  };
}

// ---- benchmark endpoint ----

const BURST_MAX_COUNT = 1_000_000;
const BURST_MAX_BODY = 16 * 1024;

function answer(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

// POST /bench/burst {room, count}: see the header. The emitting loop runs synchronously, as a
// handler emitting in a loop would, so it holds the event loop until it is done.
function burst(io, req, res) {
  let body = "";
  let tooLarge = false;
  req.setEncoding("utf8");
  req.on("data", (chunk) => {
    body += chunk;
    if (body.length > BURST_MAX_BODY) {
      tooLarge = true;
      req.destroy();
    }
  });
  req.on("end", () => {
    if (tooLarge) return;
    let request;
    try {
      request = JSON.parse(body);
    } catch {
      return answer(res, 400, { error: "invalid JSON" });
    }
    if (!isObject(request) || !validRoom(request.room)) {
      return answer(res, 400, { error: "room: 1 to 64 characters of A-Z a-z 0-9 _ . : -" });
    }
    const { room, count } = request;
    if (!Number.isInteger(count) || count < 1 || count > BURST_MAX_COUNT) {
      return answer(res, 400, { error: `count: 1 to ${BURST_MAX_COUNT}` });
    }
    let emitted = 0;
    let failed = 0;
    const started = process.hrtime.bigint();
    for (let seq = 0; seq < count; seq++) {
      const micros = (process.hrtime.bigint() - started) / 1000n;
      try {
        io.to(room).emit("message", {
          room,
          id: `bench-${seq}`,
          from: "bench",
          text: `0:${seq}:${micros}:`,
          ts: Date.now(),
        });
        emitted++;
      } catch {
        failed++;
      }
    }
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    answer(res, 200, { emitted, failed, elapsed_ms: elapsedMs });
  });
}

// ---- server ----

async function main() {
  const cfg = config();
  const instance = randomBytes(4).toString("hex");
  const idPrefix = randomBytes(6).toString("hex");
  let nextId = 1;

  const pubClient = new Redis(cfg.redisUrl);
  const subClient = pubClient.duplicate();
  for (const [client, label] of [[pubClient, "pub"], [subClient, "sub"]]) {
    client.on("error", (err) => process.stderr.write(`redis ${label}: ${err.message}\n`));
  }
  // Start serving only once both Redis connections are up (fail after 10 s).
  let readyTimer;
  await Promise.race([
    Promise.all(
      [pubClient, subClient].map(
        (c) => new Promise((resolve) => (c.status === "ready" ? resolve() : c.once("ready", resolve))),
      ),
    ),
    new Promise((_, reject) => {
      readyTimer = setTimeout(() => reject(new Error(`Redis not ready at ${cfg.redisUrl}`)), 10000);
    }),
  ]).finally(() => clearTimeout(readyTimer));

  const httpServer = http.createServer((req, res) => {
    if (req.method === "GET" && req.url === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("ok");
      return;
    }
    if (cfg.benchEndpoints && req.method === "POST" && req.url === "/bench/burst") {
      burst(io, req, res);
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found");
  });

  if (cfg.benchEndpoints) process.stderr.write("benchmark endpoints enabled (POST /bench/burst)\n");
  const io = new Server(httpServer, {
    transports: ["polling", "websocket"],
    adapter: createAdapter(pubClient, subClient),
  });

  io.on("connection", (socket) => {
    const name = socket.handshake.auth?.name;
    const from = typeof name === "string" && name.length > 0 ? name : socket.id;

    socket.on(
      "join",
      guarded("join", (payload, ack) => {
        if (!isObject(payload)) return reply(ack, { error: "invalid payload" });
        if (!validRoom(payload.room)) return reply(ack, { error: "invalid room" });
        socket.join(payload.room);
        reply(ack, { ok: true });
      }),
    );

    socket.on(
      "leave",
      guarded("leave", (payload, ack) => {
        if (!isObject(payload)) return reply(ack, { error: "invalid payload" });
        if (!validRoom(payload.room)) return reply(ack, { error: "invalid room" });
        socket.leave(payload.room);
        reply(ack, { ok: true });
      }),
    );

    socket.on(
      "message",
      guarded("message", (payload, ack) => {
        if (!isObject(payload)) return reply(ack, { error: "invalid payload" });
        const { room, text } = payload;
        if (!validRoom(room)) return reply(ack, { error: "invalid room" });
        const bad = textError(text);
        if (bad) return reply(ack, { error: bad });
        if (!socket.rooms.has(room)) return reply(ack, { error: "not a member of this room" });
        const id = `${idPrefix}-${nextId++}`;
        const ts = Date.now();
        // io.to(): every member, the sender included, on every instance.
        io.to(room).emit("message", { room, id, from, text, ts });
        reply(ack, { id, ts });
      }),
    );

    socket.on(
      "typing",
      guarded("typing", (payload, ack) => {
        if (!isObject(payload)) return reply(ack, { error: "invalid payload" });
        const { room } = payload;
        if (!validRoom(room)) return reply(ack, { error: "invalid room" });
        if (!socket.rooms.has(room)) return reply(ack, { error: "not a member of this room" });
        // socket.to(): the other members only.
        socket.to(room).volatile.emit("typing", { room, from });
        reply(ack, { ok: true });
      }),
    );

    socket.emit("welcome", { instance, sid: socket.id });
  });

  await new Promise((resolve, reject) => {
    httpServer.once("error", reject);
    httpServer.listen(cfg.port, cfg.host, resolve);
  });
  const addr = httpServer.address();
  process.stdout.write(
    JSON.stringify({ listening: `${addr.address}:${addr.port}`, instance, redis: cfg.redisUrl }) +
      "\n",
  );

  let closing = false;
  const shutdown = async (signal) => {
    if (closing) return;
    closing = true;
    process.stderr.write(`${signal}: shutting down\n`);
    // Whatever stalls below, do not hang.
    setTimeout(() => process.exit(1), 5000).unref();
    try {
      await io.close(); // disconnects every socket, closes the adapter and the HTTP server
    } catch (err) {
      process.stderr.write(`io.close: ${err?.message ?? err}\n`);
    }
    // QUIT when connected; a client that is reconnecting would wait for Redis to come back.
    await Promise.allSettled(
      [pubClient, subClient].map((c) => (c.status === "ready" ? c.quit() : c.disconnect())),
    );
    process.exit(0);
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}

main().catch((err) => {
  process.stderr.write(`fatal: ${err?.stack ?? err}\n`);
  process.exit(1);
});
