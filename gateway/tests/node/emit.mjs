#!/usr/bin/env node
// One emit through the official @socket.io/redis-emitter (pinned in package.json), then exit.
//
// Usage: node emit.mjs --redis-url redis://127.0.0.1:PORT --event NAME --data JSON [--room ROOM]
// Without --room the emit is for the whole namespace. Prints {"ok":true} once Redis took it.

import { parseArgs } from "node:util";
import { Emitter } from "@socket.io/redis-emitter";
import { Redis } from "ioredis";

const { values } = parseArgs({
  options: {
    "redis-url": { type: "string" },
    room: { type: "string" },
    event: { type: "string" },
    data: { type: "string", default: "null" },
  },
});

const redis = new Redis(values["redis-url"], { maxRetriesPerRequest: 1 });
const emitter = new Emitter(redis);
const target = values.room ? emitter.to(values.room) : emitter;
target.emit(values.event, JSON.parse(values.data));
// ioredis sends commands in order: once this PING is answered, the PUBLISH was taken.
await redis.ping();
redis.disconnect();
process.stdout.write(JSON.stringify({ ok: true }) + "\n");
