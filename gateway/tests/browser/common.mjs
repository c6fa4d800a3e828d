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

/// Opens the chat page at `url` in a new context of `browser` and logs in as `user`; resolves
/// once the page says it is connected. `errors` collects the page's uncaught errors.
export async function openLoggedIn(browser, url, user, password, timeout) {
  const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
  const page = await context.newPage();
  page.setDefaultTimeout(timeout);
  const errors = [];
  page.on("pageerror", (err) => errors.push(String(err)));
  await page.goto(url);
  await page.fill("#username", user);
  await page.fill("#password", password);
  await page.click("#login-form button[type=submit]");
  await page.waitForSelector("#state[data-state=connected]");
  return { page, errors };
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

/// The chat messages `page` shows, top to bottom: `{from, text, id, pending}` (the system
/// lines and the history controls left out).
export function shownMessages(page) {
  return page.$$eval("#messages li", (lis) =>
    lis
      .filter((li) => li.querySelector(".text"))
      .map((li) => ({
        from: li.querySelector(".from")?.textContent ?? "",
        text: li.querySelector(".text").textContent,
        id: li.dataset.id ?? null,
        pending: li.classList.contains("pending"),
      })),
  );
}

/// The system lines `page` shows in the room open there ("history could not be recovered"…).
export function shownSystemLines(page) {
  return page.$$eval("#messages li.system", (lis) => lis.map((li) => li.textContent));
}

/// Why `shown` (from [`shownMessages`]) does not hold each of `expected` (texts) exactly once
/// and in that order, or null when it does. Messages with other texts are ignored.
export function onceInOrder(shown, expected) {
  const wanted = new Set(expected);
  const got = shown.filter((m) => wanted.has(m.text)).map((m) => m.text);
  const missing = expected.filter((text) => !got.includes(text));
  if (missing.length) {
    const some = missing.length > 5 ? `${JSON.stringify(missing.slice(0, 5))} and ${missing.length - 5} more` : JSON.stringify(missing);
    return `${missing.length} of ${expected.length} missing: ${some}`;
  }
  const twice = [...new Set(got.filter((text, i) => got.indexOf(text) !== i))];
  if (twice.length) return `shown more than once: ${JSON.stringify(twice)}`;
  if (got.some((text, i) => text !== expected[i])) {
    return `out of order: ${JSON.stringify(got)}`;
  }
  return null;
}

/// Polls `page`'s messages until `check(shown)` returns null (fine), for at most `timeout`;
/// then throws "<what>: <the last reason check gave>", with what the page shows. A check
/// that finds duplicates or a wrong order keeps being polled too (a message may still move),
/// so the error tells the last state.
export async function waitForMessages(page, what, timeout, check) {
  const deadline = Date.now() + timeout;
  let reason = "never checked";
  let shown = [];
  for (;;) {
    shown = await shownMessages(page);
    reason = check(shown);
    if (reason === null) return shown;
    if (Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const lines = await shownSystemLines(page).catch(() => []);
  let summary = shown.map((m) => `${m.from}: ${m.text}${m.pending ? " (pending)" : ""}`);
  if (summary.length > 12) summary = [...summary.slice(0, 6), "…", ...summary.slice(-6)];
  throw new Error(
    `${what}: ${reason} after ${timeout} ms; the page shows ${shown.length} messages ` +
      `${JSON.stringify(summary)} and the system lines ${JSON.stringify(lines)}`,
  );
}
