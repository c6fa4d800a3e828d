// The official @socket.io/redis-emitter publishing into the engine instances' Redis:
//   node emitter.mjs <redis-url> <step>
// Steps (one per run, so that the Rust test observes each one's deliveries):
//   room      emit "news" {step: "room"} to room "a"
//   except    emit "news" {step: "except"} to room "a" except room "b"
//   all       emit "news" {step: "all"} to the whole namespace
//   binary    emit "file" with a Buffer [1, 2, 3] to room "a"
//   join      socketsJoin("d") for the sockets in room "c"
//   joined    emit "news" {step: "joined"} to room "d"
//   kick      disconnectSockets() for the sockets in room "c"
// Prints {"ok":true} once published; exits 1 on an error.
import { Emitter } from "@socket.io/redis-emitter";
import { Redis } from "ioredis";

const [url, step] = process.argv.slice(2);
const redis = new Redis(url);
const emitter = new Emitter(redis);
const steps = {
  room: () => emitter.to("a").emit("news", { step }),
  except: () => emitter.to("a").except("b").emit("news", { step }),
  all: () => emitter.emit("news", { step }),
  binary: () => emitter.to("a").emit("file", Buffer.from([1, 2, 3])),
  join: () => emitter.in("c").socketsJoin("d"),
  joined: () => emitter.to("d").emit("news", { step }),
  kick: () => emitter.in("c").disconnectSockets(),
};
if (!steps[step]) {
  console.error(`unknown step ${step}`);
  process.exit(2);
}
try {
  await steps[step]();
  await redis.quit();
  console.log(JSON.stringify({ ok: true }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, error: String(err) }));
  process.exit(1);
}
