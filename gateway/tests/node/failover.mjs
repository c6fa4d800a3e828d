#!/usr/bin/env node
// Failover of the official socket.io-client (Node, pinned in package.json) through nginx:
// the client logs in (a token), joins a room and records every `message` it receives. After
// any reconnect it re-joins with `since` (the last id it saw), as the README tells client
// authors. The driving test kills its instance and sends messages meanwhile.
//
// Usage: node failover.mjs --url http://127.0.0.1:PORT --token=TOKEN --room NAME
//
// Prints JSON lines on stdout:
//   {"step":"joined","instance":"..."}                         once in the room
//   {"step":"rejoined","instance":"...","recovered":true}      after each reconnect
//   {"ok":true,"texts":[...],"duplicates":[...],"rejoins":N}   on "report" from stdin
// then exits; {"ok":false,"error":"..."} and exit 1 on a failure.

import { parseArgs } from "node:util";
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    token: { type: "string" },
    room: { type: "string", default: "failover" },
    "timeout-ms": { type: "string", default: "10000" },
  },
});
const timeoutMs = Number(args["timeout-ms"]);

function print(line) {
  process.stdout.write(JSON.stringify(line) + "\n");
}

function fail(error) {
  print({ ok: false, error: String(error) });
  process.exit(1);
}

const texts = [];
const duplicates = [];
const seen = new Set();
let lastId = null;
let instance = null;
let rejoins = 0;
let joinedOnce = false;

const socket = io(args.url, {
  auth: { token: args.token },
  transports: ["websocket"],
  reconnectionDelay: 500,
  reconnectionDelayMax: 1000,
});

socket.on("welcome", (welcome) => {
  instance = welcome.instance;
});

socket.on("message", (message) => {
  if (message.room !== args.room || typeof message.id !== "string") {
    return;
  }
  if (seen.has(message.id)) {
    duplicates.push(message.text);
    return;
  }
  seen.add(message.id);
  texts.push(message.text);
  lastId = message.id;
});

socket.on("connect", async () => {
  const request = { room: args.room };
  if (joinedOnce && lastId !== null) {
    request.since = lastId;
  }
  let reply;
  try {
    reply = await socket.timeout(timeoutMs).emitWithAck("join", request);
  } catch (err) {
    fail(`join: ${err}`);
  }
  if (reply?.ok !== true) {
    fail(`join refused: ${JSON.stringify(reply)}`);
  }
  // `welcome` may come after the join's ack: wait for it a moment.
  for (let i = 0; i < 100 && instance === null; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  if (!joinedOnce) {
    joinedOnce = true;
    print({ step: "joined", instance });
  } else {
    rejoins += 1;
    print({ step: "rejoined", instance, recovered: reply.recovered === true });
  }
});

socket.on("disconnect", () => {
  instance = null;
});

socket.on("connect_error", (err) => {
  // Reconnection goes on by itself; only a refusal by the server is fatal.
  if (err?.message && !/websocket error|timeout|xhr poll error/i.test(err.message)) {
    fail(`connect_error: ${err.message}`);
  }
});

const input = createInterface({ input: process.stdin });
input.on("line", (line) => {
  if (line.trim() === "report") {
    print({ ok: true, texts, duplicates, rejoins });
    socket.disconnect();
    setTimeout(() => process.exit(0), 100);
  }
});
