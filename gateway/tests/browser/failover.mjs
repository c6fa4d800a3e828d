// The chat page in headless Debian chromium (playwright-core) through nginx while the gateway
// instance serving it dies. Driven step by step by gateway/tests/browser_failover.rs over
// stdin/stdout: each step prints one JSON line, and the test answers with one line.
//
//   page:  {"step":"joined","instance":I}       log in, join --room, note the instance
//   test:  "killed"                              (the test SIGKILLed instance I)
//   page:  {"step":"rejoined","instance":J,...}  showed reconnecting, reconnected to J != I,
//                                                re-joined --room by itself
//   test:  "sent"                                (another user sent --expect-text in --room)
//   page:  {"ok":true,...}                       the message is shown
//
// On failure the last line is {"ok":false,"error":...} and the exit status non-zero.
// Screenshots go to --artifacts.
//
// node failover.mjs --url URL --user alice --password P --from bob --room ROOM
//                   --expect-text TEXT --artifacts DIR [--timeout-ms 15000]
import { join } from "node:path";
import { conversation, launchChromium, parseCommandLine } from "./common.mjs";

const { args, timeout, artifacts } = parseCommandLine();

const { answer, report } = conversation(timeout);

const browser = await launchChromium(timeout);

const summary = { ok: false };
let page = null;
try {
  const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
  page = await context.newPage();
  page.setDefaultTimeout(timeout);
  const errors = [];
  page.on("pageerror", (err) => errors.push(String(err)));
  await page.goto(args.url);
  await page.fill("#username", args.user);
  await page.fill("#password", args.password);
  await page.click("#login-form button[type=submit]");
  await page.waitForSelector("#state[data-state=connected]");
  await page.waitForFunction(() => document.getElementById("instance").textContent !== "");
  await page.fill("#room-input", args.room);
  await page.click("#join-form button[type=submit]");
  await page.waitForSelector("#room-list button.current[data-joined=true]");
  await page.waitForSelector("#text:not([disabled])");
  const before = await page.textContent("#instance");
  summary.before = before;

  // Every state the page shows from now on, in order (a reconnect may be quick: a log, not a
  // look at the current state, proves the page showed it).
  await page.evaluate(() => {
    const el = document.getElementById("state");
    window.__states = [];
    new MutationObserver(() => window.__states.push(el.dataset.state)).observe(el, {
      attributes: true,
      attributeFilter: ["data-state"],
    });
  });
  await page.screenshot({ path: join(artifacts, "failover-1-before.png") });
  report({ step: "joined", instance: before });

  await answer("killed");
  await page.waitForFunction(() =>
    window.__states.some((s) => s === "reconnecting" || s === "offline"),
  );
  await page.screenshot({ path: join(artifacts, "failover-2-reconnecting.png") });
  // Back: connected, to another instance, the room re-joined without any click.
  await page.waitForFunction(
    (old) => {
      const states = window.__states;
      const lost = states.findIndex((s) => s === "reconnecting" || s === "offline");
      const shown = document.getElementById("instance").textContent;
      return (
        lost >= 0 &&
        states.slice(lost).includes("connected") &&
        document.getElementById("state").dataset.state === "connected" &&
        shown !== "" &&
        shown !== old
      );
    },
    before,
  );
  await page.waitForSelector("#room-list button.current[data-joined=true]");
  await page.waitForSelector("#text:not([disabled])");
  summary.after = await page.textContent("#instance");
  summary.states = await page.evaluate(() => window.__states);
  await page.screenshot({ path: join(artifacts, "failover-3-reconnected.png") });
  report({ step: "rejoined", instance: summary.after, states: summary.states });

  await answer("sent");
  await page.waitForFunction(
    ([name, body]) =>
      [...document.querySelectorAll("#messages li")].some(
        (li) =>
          li.querySelector(".from")?.textContent === name &&
          li.querySelector(".text")?.textContent === body,
      ),
    [args.from, args["expect-text"]],
  );
  await page.screenshot({ path: join(artifacts, "failover-4-message.png") });
  if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
  summary.ok = true;
} catch (err) {
  summary.error = String(err && err.stack ? err.stack : err);
  if (page) await page.screenshot({ path: join(artifacts, "failover-failure.png") }).catch(() => {});
} finally {
  await browser.close().catch(() => {});
}
report(summary);
process.exit(summary.ok ? 0 : 1);
