// The official socket.io-client against our Socket.IO server with the protocol suite's
// reference handlers (see engine/tests/socket_io.rs):
//   node sio.mjs <url> <polling|websocket|upgrade>
// Connects to "/" with an auth payload and to "/custom", sends text and binary events with
// and without acks, answers a server ack request, then disconnects. Prints one JSON line
// with what it saw; exits 1 on anything unexpected, or after 10 s.
import { io } from "socket.io-client";

const [url, mode] = process.argv.slice(2);
const transports = { polling: ["polling"], websocket: ["websocket"], upgrade: ["polling", "websocket"] }[mode];
if (!url || !transports) {
  console.error("usage: node sio.mjs <url> <polling|websocket|upgrade>");
  process.exit(2);
}
const seen = { mode };
const fail = (why) => {
  console.log(JSON.stringify({ ...seen, error: why }));
  process.exit(1);
};
setTimeout(() => fail("timed out"), 10_000).unref();
const once = (socket, event) => new Promise((resolve) => socket.once(event, (...args) => resolve(args)));

const options = { transports, upgrade: mode === "upgrade", reconnection: false };
const main = io(url, { ...options, auth: { token: "t-1" } });
main.on("connect_error", (err) => fail(`connect_error: ${err.message}`));
const [auth] = await once(main, "auth");
seen.auth = auth;
if (mode === "upgrade" && main.io.engine.transport.name !== "websocket") {
  await once(main.io.engine, "upgrade");
}
seen.transport = main.io.engine.transport.name;

main.emit("message", 1, "2", { 3: [true] });
seen.messageBack = await once(main, "message-back");

main.emit("message", Buffer.from([1, 2, 3]), { nested: Buffer.from([4, 5]) });
const [bytes, nested] = await once(main, "message-back");
seen.binaryBack = [Array.from(bytes), Array.from(nested.nested)];

// The callback form: emitWithAck resolves with the first argument only.
const withAck = (...args) => new Promise((resolve) => main.emit("message-with-ack", ...args, (...acked) => resolve(acked)));
seen.acked = await withAck("a", { b: 1 });
const [binaryAck] = await withAck(Buffer.from([9, 8]));
seen.binaryAcked = Array.from(binaryAck);

main.once("question", (text, answer) => answer(`yes to ${text}`));
main.emit("ask-me");
seen.answer = (await once(main, "answer"))[0];

const custom = io(`${url}/custom`, options);
seen.customAuth = (await once(custom, "auth"))[0];
custom.emit("message", "to custom");
seen.customBack = await once(custom, "message-back");

const refused = io(url, { ...options, forceNew: true, auth: { refuse: "go away" } });
const [error] = await once(refused, "connect_error");
seen.refused = { message: error.message, data: error.data };
refused.close();

custom.disconnect();
main.disconnect();
console.log(JSON.stringify(seen));
process.exit(0);
