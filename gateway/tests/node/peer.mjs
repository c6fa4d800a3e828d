#!/usr/bin/env node
// One chat participant on the official socket.io-client (pinned in package.json), driven line
// by line by a test: the same line protocol as tests/python/peer.py (python-socketio), so that
// a test can put the two clients in one conversation.
//
// Usage: node peer.mjs --url URL --token=TOKEN --transport websocket|polling --room ROOM
//                      [--timeout-ms 20000]
//
// Connects with `auth: {token}` over the one transport given, waits for `welcome`, joins ROOM,
// and prints one JSON line per step on stdout:
//   {"step":"ready","instance":...,"sid":...,"transport":...}   joined, listening
//   {"step":"sent","ids":[...]}       after {"send":[text,...]}: each acked, in order
//   {"step":"dm_sent","id":...}       after {"dm":{"to":user,"text":...}}
//   {"step":"report","messages":[...],"dms":[...]}
//                                     after {"await":{"messages":N,"dms":M}}: once N `message`
//                                     and M `dm` events arrived (own echoes count), and 300 ms
//                                     later, every event received
//   {"ok":false,"error":...}          on any failure, then exit 1
// Each command is one JSON line on stdin. It exits 0 after {"bye":true} or when stdin closes,
// and 1 after --timeout-ms whatever it was doing.

import { parseArgs } from "node:util";
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const QUIET_MS = 300;

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

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    token: { type: "string" },
    transport: { type: "string" },
    room: { type: "string" },
    "timeout-ms": { type: "string", default: "20000" },
  },
  strict: true,
});
if (!args.url || !args.token || !args.room || !["websocket", "polling"].includes(args.transport)) {
  fail("usage: --url URL --token=TOKEN --transport websocket|polling --room ROOM");
}
const timeoutMs = Number(args["timeout-ms"]);
const deadline = Date.now() + timeoutMs;
const left = () => Math.max(100, deadline - Date.now());
setTimeout(() => fail(`overall timeout after ${timeoutMs} ms`), timeoutMs).unref();

const messages = [];
const dms = [];
let arrived = () => {};
const socket = io(args.url, {
  auth: { token: args.token },
  transports: [args.transport],
  upgrade: false,
  reconnection: false,
  forceNew: true,
  timeout: left(),
});
socket.on("message", (data) => {
  messages.push(data);
  arrived();
});
socket.on("dm", (data) => {
  dms.push(data);
  arrived();
});
const welcome = new Promise((resolve) => socket.once("welcome", resolve));
socket.on("connect_error", (err) => fail(`connect_error: ${err?.message ?? err}`));

async function acked(event, data) {
  const ack = await socket.timeout(left()).emitWithAck(event, data);
  if (typeof ack?.id !== "string") fail(`${event} acked ${JSON.stringify(ack)}`);
  return ack.id;
}

async function awaitEvents(wanted) {
  while (messages.length < wanted.messages || dms.length < wanted.dms) {
    if (Date.now() >= deadline) {
      fail(`awaited ${wanted.messages} messages and ${wanted.dms} dms, got ${messages.length} ` +
        `and ${dms.length}: ${JSON.stringify({ messages, dms })}`);
      return;
    }
    await new Promise((resolve) => {
      arrived = resolve;
      setTimeout(resolve, 50);
    });
  }
  await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
  print({ step: "report", messages: [...messages], dms: [...dms] });
}

async function run(command) {
  if (command.send) {
    const ids = [];
    for (const text of command.send) ids.push(await acked("message", { room: args.room, text }));
    print({ step: "sent", ids });
  } else if (command.dm) {
    print({ step: "dm_sent", id: await acked("dm", command.dm) });
  } else if (command.await) {
    await awaitEvents(command.await);
  } else if (command.bye) {
    socket.disconnect();
    process.exit(0);
  } else {
    fail(`unknown command ${JSON.stringify(command)}`);
  }
}

async function main() {
  const { instance } = await welcome;
  const joined = await socket.timeout(left()).emitWithAck("join", { room: args.room });
  if (joined?.ok !== true) fail(`join acked ${JSON.stringify(joined)}`);
  print({ step: "ready", instance, sid: socket.id, transport: socket.io.engine.transport.name });
  // Commands run one at a time, in the order they arrive.
  let queue = Promise.resolve();
  const input = createInterface({ input: process.stdin });
  input.on("line", (line) => {
    queue = queue.then(() => run(JSON.parse(line))).catch(fail);
  });
  input.on("close", () => {
    queue.then(() => {
      socket.disconnect();
      process.exit(0);
    });
  });
}

main().catch(fail);
