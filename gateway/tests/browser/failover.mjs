// The chat page in headless Debian chromium (playwright-core) through nginx while the gateway
// instance serving it dies. Driven step by step by gateway/tests/browser_failover.rs over
// stdin/stdout: each step prints one JSON line, and the test answers with one line.
//
//   page:  {"step":"joined","instance":I}       log in, join --room, note the instance
//   test:  "first"                               (another user, --from, sent --first-text)
//   page:  {"step":"seen","instance":I}          the message is shown (its id is the page's
//                                                last seen in the room)
//   test:  "killed"                              (the test SIGKILLed instance I, then --from
//                                                sent --missed messages "--missed-text 1..n"
//                                                while the page was reconnecting)
//   page:  {"step":"rejoined","instance":J,...}  showed reconnecting, reconnected to J != I,
//                                                re-joined --room by itself (`join` with
//                                                `since`), and shows the missed messages
//                                                once each, in order, after --first-text
//   test:  "sent"                                (--from sent --expect-text in --room)
//   page:  {"ok":true,...}                       the message is shown, after all the others,
//                                                and still every one exactly once
//
// On failure the last line is {"ok":false,"error":...} and the exit status non-zero.
// Screenshots go to --artifacts.
//
// node failover.mjs --url URL --user alice --password P --from bob --room ROOM
//                   --first-text TEXT --missed N --missed-text TEXT --expect-text TEXT
//                   --artifacts DIR [--timeout-ms 15000]
import { join } from "node:path";
import { conversation, launchChromium, onceInOrder, parseCommandLine, shownSystemLines, waitForMessages, openLoggedIn } from "./common.mjs";

const { args, timeout, artifacts } = parseCommandLine();
const missed = Array.from({ length: Number(args.missed || 0) }, (_, i) => `${args["missed-text"]} ${i + 1}`);

const { answer, report } = conversation(timeout);

const browser = await launchChromium(timeout);

const summary = { ok: false };
let page = null;
try {
  const opened = await openLoggedIn(browser, args.url, args.user, args.password, timeout);
  page = opened.page;
  const errors = opened.errors;
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
  report({ step: "joined", instance: before });

  // A message before the failover: the page has seen an id in the room to resume from.
  await answer("first");
  await waitForMessages(page, "the message sent before the failover was not shown", timeout, (shown) =>
    onceInOrder(shown, [args["first-text"]]),
  );
  await page.screenshot({ path: join(artifacts, "failover-1-before.png") });
  report({ step: "seen", instance: before });

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
  // What was sent while the page was away: replayed on the re-join, after the first message,
  // once each and in order.
  await waitForMessages(
    page,
    "after the failover the page does not show the messages sent while it was reconnecting",
    timeout,
    (shown) => onceInOrder(shown, [args["first-text"], ...missed]),
  );
  const lines = await shownSystemLines(page);
  if (lines.some((line) => line.startsWith("history could not be recovered"))) {
    throw new Error(`the page says the history was lost: ${JSON.stringify(lines)}`);
  }
  await page.screenshot({ path: join(artifacts, "failover-3-reconnected.png") });
  report({ step: "rejoined", instance: summary.after, states: summary.states, missed: missed.length });

  await answer("sent");
  const all = [args["first-text"], ...missed, args["expect-text"]];
  const shown = await waitForMessages(page, "the message sent after the failover", timeout, (shown) =>
    onceInOrder(shown, all),
  );
  // Still once each a moment later (no late copy of a replayed or live one).
  await page.waitForTimeout(500);
  await waitForMessages(page, "a moment after the last message", 0, (shown) => onceInOrder(shown, all));
  // From whom they are, and that nothing is left pending.
  const wrong = shown.filter((m) => all.includes(m.text) && (m.from !== args.from || m.pending));
  if (wrong.length) throw new Error(`messages shown with the wrong sender or pending: ${JSON.stringify(wrong)}`);
  summary.shown = shown.filter((m) => all.includes(m.text)).length;
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
