// What the browser test scripts share: their command line, Chromium's launch, and the
// line-by-line conversation with the Rust test that drives them.
import { mkdirSync } from "node:fs";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

/// `--key value` and `--key=value` arguments, plus the timeout (default 15 s) and the
/// artifacts directory (created).
export function parseCommandLine() {
  const args = Object.fromEntries(
    process.argv.slice(2).reduce((pairs, arg, i, all) => {
      if (arg.startsWith("--")) {
        const [key, inline] = arg.slice(2).split(/=(.*)/s);
        pairs.push([key, inline !== undefined ? inline : all[i + 1]]);
      }
      return pairs;
    }, []),
  );
  const timeout = Number(args["timeout-ms"] || 15000);
  const artifacts = args.artifacts;
  mkdirSync(artifacts, { recursive: true });
  return { args, timeout, artifacts };
}

/// Headless Debian chromium with the flags this closed network needs. No --user-data-dir:
/// playwright refuses it, and launch() already gives chromium a fresh temporary profile of its
/// own, deleted when the browser closes. Launching may take far longer than any step of a
/// test: a first start after installation, with its caches cold, took over 20 s on a busy
/// 2-core machine (8 s on a quiet one), so it gets at least a minute.
export function launchChromium(timeout) {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    timeout: Math.max(timeout, 60000),
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-quic",
      "--no-first-run",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/// The conversation with the driving test: `report(obj)` prints one JSON line; `answer(word)`
/// waits (at most `timeout`) for the test's next line, which must be `word`; `close()` stops
/// listening so the process can exit.
export function conversation(timeout) {
  const lines = [];
  const waiters = [];
  const input = createInterface({ input: process.stdin });
  input.on("line", (line) => {
    const waiter = waiters.shift();
    if (waiter) waiter(line.trim());
    else lines.push(line.trim());
  });
  function answer(expected) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "${expected}" from the test`)), timeout);
      const done = (line) => {
        clearTimeout(timer);
        if (line === expected) resolve();
        else reject(new Error(`expected "${expected}" from the test, got "${line}"`));
      };
      if (lines.length) done(lines.shift());
      else waiters.push(done);
    });
  }
  const report = (line) => console.log(JSON.stringify(line));
  return { answer, report, close: () => input.close() };
}
