// The official engine.io-client against our engine.io server with an echo handler:
//   node eio.mjs <url> <polling|websocket|upgrade>
// Sends a text and a binary message, before and (for "upgrade") after the upgrade to
// websocket, and checks each comes back. Prints one JSON line with what it saw; exits 1 on
// anything unexpected, or after 10 s.
import { Socket } from "engine.io-client";

const [url, mode] = process.argv.slice(2);
const transports = {
  polling: ["polling"],
  websocket: ["websocket"],
  upgrade: ["polling", "websocket"],
}[mode];
if (!url || !transports) {
  console.error("usage: node eio.mjs <url> <polling|websocket|upgrade>");
  process.exit(2);
}

const seen = { mode, opened: null, upgraded: null, echoes: [] };
const fail = (why) => {
  console.log(JSON.stringify({ ...seen, error: why }));
  process.exit(1);
};
setTimeout(() => fail("timed out"), 10_000).unref();

const socket = new Socket(url, { path: "/socket.io/", transports, upgrade: mode === "upgrade" });
const expected = [];
const expect = (value) => expected.push(value);
const sendBoth = (label) => {
  socket.send(label);
  expect(label);
  socket.send(new Uint8Array([1, 2, 3, label.length]));
  expect(`binary:1,2,3,${label.length}`);
};

socket.on("open", () => {
  seen.opened = socket.transport.name;
  sendBoth("hello");
});
socket.on("upgrade", (transport) => {
  seen.upgraded = transport.name;
  sendBoth("after upgrade");
});
socket.on("message", (data) => {
  const echo = typeof data === "string" ? data : `binary:${Array.from(new Uint8Array(data)).join(",")}`;
  seen.echoes.push(echo);
  const wanted = expected.shift();
  if (echo !== wanted) fail(`expected ${wanted}, got ${echo}`);
  const done = mode === "upgrade" ? seen.upgraded !== null && expected.length === 0 : seen.echoes.length === 2;
  if (done) {
    socket.close();
  }
});
socket.on("close", (reason) => {
  const complete = mode === "upgrade" ? seen.echoes.length === 4 : seen.echoes.length === 2;
  if (!complete) fail(`closed early: ${reason}`);
  console.log(JSON.stringify(seen));
  process.exit(0);
});
socket.on("error", (err) => fail(String(err)));
