#!/usr/bin/env node
// The publisher of `loadtest publish --via emitter`: the official @socket.io/redis-emitter
// (pinned in package.json) over ioredis, publishing at a fixed rate to rooms of a Socket.IO
// cluster through its Redis, as an application's backend does.
//
// Usage:
//   node emitter-publisher.mjs --redis-url redis://127.0.0.1:6379 --template 'lt-abc-{n}'
//       --rooms N --rate R --count C --duration-ms D [--event tick] [--pad-bytes 0]
//       [--key socket.io]
//
// Room n (0 <= n < N) is the template with {n} replaced: raw names for Node's socket.io with
// @socket.io/redis-adapter (`lt-abc-{n}`), tenant-scoped ones for our gateway
// (`t:<tenant>:r:lt-abc-{n}`). Publish i goes to room i mod N with the single argument
// {room: i mod N, seq: floor(i / N), sent_us, pad}, sent_us being the wall clock in
// microseconds (Unix time) when it is handed to the emitter. Publish i is due i / R seconds
// after the start; publishing stops after C publishes or once the next is not due within D ms,
// whichever comes first (loadtest's `pacing` keeps the same schedule).
//
// Prints {"ready":true} once Redis is connected, then waits for a line `go` on stdin (at most
// 10 minutes) and publishes. Once every PUBLISH is answered (or after 10 s more) it prints
//   {"attempted":A,"published":P,"failed":F,"per_room":[...],"elapsed_ms":X,"first_error":E}
// and exits 0: `published` counts the PUBLISH commands Redis answered, `per_room` them per
// room, `elapsed_ms` runs from the first publish to the last answer. {"ok":false,"error":...}
// and exit 1 on a failure. Diagnostics go to stderr.

import { parseArgs } from "node:util";
import { createInterface } from "node:readline";
import { performance } from "node:perf_hooks";
import { Emitter } from "@socket.io/redis-emitter";
import { Redis } from "ioredis";

const WAIT_FOR_GO_MS = 10 * 60 * 1000;
const DRAIN_MS = 10 * 1000;

function print(line) {
  process.stdout.write(JSON.stringify(line) + "\n");
}

function fail(error) {
  process.stdout.write(JSON.stringify({ ok: false, error: String(error) }) + "\n", () =>
    process.exit(1),
  );
}

process.on("uncaughtException", (e) => fail(`uncaught exception: ${e?.stack ?? e}`));
process.on("unhandledRejection", (e) => fail(`unhandled rejection: ${e?.stack ?? e}`));

function config() {
  const { values } = parseArgs({
    options: {
      "redis-url": { type: "string" },
      template: { type: "string" },
      rooms: { type: "string" },
      rate: { type: "string" },
      count: { type: "string" },
      "duration-ms": { type: "string" },
      event: { type: "string", default: "tick" },
      "pad-bytes": { type: "string", default: "0" },
      key: { type: "string", default: "socket.io" },
    },
    strict: true,
    allowPositionals: false,
  });
  const number = (name, min) => {
    const value = Number(values[name]);
    if (!Number.isFinite(value) || value < min) throw new Error(`--${name} must be a number >= ${min}`);
    return value;
  };
  if (!values["redis-url"]) throw new Error("--redis-url is required");
  if (!values.template?.includes("{n}")) throw new Error("--template must contain {n}");
  const rate = number("rate", Number.MIN_VALUE);
  return {
    redisUrl: values["redis-url"],
    template: values.template,
    rooms: Math.floor(number("rooms", 1)),
    rate,
    count: Math.floor(number("count", 0)),
    durationMs: number("duration-ms", 0),
    event: values.event,
    pad: "x".repeat(Math.floor(number("pad-bytes", 0))),
    key: values.key,
  };
}

const wallMicros = () => Math.round((performance.timeOrigin + performance.now()) * 1000);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  const cfg = config();
  const redis = new Redis(cfg.redisUrl, { maxRetriesPerRequest: 1 });
  redis.on("error", (err) => process.stderr.write(`redis: ${err.message}\n`));
  await redis.ping();
  const perRoom = new Array(cfg.rooms).fill(0);
  let published = 0;
  let failed = 0;
  let firstError = null;
  let lastAnswer = performance.now();
  const pending = new Set();
  const names = Array.from({ length: cfg.rooms }, (_, n) => cfg.template.replaceAll("{n}", String(n)));
  // The emitter publishes a single-room emit on `{key}#/#{room}#`.
  const channels = new Map(names.map((name, n) => [`${cfg.key}#/#${name}#`, n]));
  // The emitter only calls publish(channel, message) and drops its promise: this client
  // passes the call on and counts Redis's answers.
  const counting = {
    publish(channel, message) {
      const room = channels.get(channel);
      const answer = redis.publish(channel, message).then(
        () => {
          published++;
          if (room !== undefined) perRoom[room]++;
        },
        (err) => {
          failed++;
          firstError ??= err?.message ?? String(err);
        },
      );
      const settled = answer.finally(() => {
        lastAnswer = performance.now();
        pending.delete(settled);
      });
      pending.add(settled);
    },
  };
  const emitter = new Emitter(counting, { key: cfg.key });
  print({ ready: true });

  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no `go` on stdin in time")), WAIT_FOR_GO_MS);
    const input = createInterface({ input: process.stdin });
    input.on("line", (line) => {
      if (line.trim() === "go") {
        clearTimeout(timer);
        resolve();
        input.close();
      }
    });
    input.on("close", () => reject(new Error("stdin closed before `go`")));
  });

  const start = performance.now();
  let attempted = 0;
  while (attempted < cfg.count) {
    const due = (attempted * 1000) / cfg.rate;
    if (due >= cfg.durationMs) break;
    const wait = start + due - performance.now();
    if (wait > 0) {
      await sleep(wait);
      continue;
    }
    const room = attempted % cfg.rooms;
    const seq = Math.floor(attempted / cfg.rooms);
    emitter.to(names[room]).emit(cfg.event, { room, seq, sent_us: wallMicros(), pad: cfg.pad });
    attempted++;
    // Behind schedule, let Redis's answers in now and then.
    if (attempted % 256 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  await Promise.race([Promise.allSettled([...pending]), sleep(DRAIN_MS)]);
  print({
    attempted,
    published,
    failed,
    per_room: perRoom,
    elapsed_ms: Math.max(0, lastAnswer - start),
    first_error: firstError,
  });
  redis.disconnect();
  process.exit(0);
}

main().catch(fail);
