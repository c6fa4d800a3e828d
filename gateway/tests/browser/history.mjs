// A room's history in the chat page (headless Debian chromium, playwright-core), run by
// gateway/tests/all/browser.rs once --from has sent --seeded messages to --room (the text of
// message i is --seed-text with "{i}" replaced by i, from 1). Checks, in order:
//
//   1. joining the room shows its latest 50 messages (`history`), once each, in order, with
//      "Load older messages" above them (`more`);
//   2. scrolled to the top, the page loads the older ones until the beginning, without moving
//      what was on screen;
//   3. after sending --sent messages of its own and a reload, the page is back in the room
//      by itself and shows them (and the seeded ones before them) once each, in order.
//
// Prints one JSON summary line; exits non-zero on failure. Screenshots go to --artifacts.
//
// node history.mjs --url URL --user alice --password P --from bob --room ROOM --seeded 60
//                  --seed-text "history {i}" --sent 3 --artifacts DIR [--timeout-ms 15000]
import { join } from "node:path";
import { launchChromium, onceInOrder, parseCommandLine, waitForMessages, openLoggedIn } from "./common.mjs";

const { args, timeout, artifacts } = parseCommandLine();
const seeded = Number(args.seeded);
const sent = Number(args.sent || 3);
const PAGE = 50; // what the page asks per `history` request
const seedTexts = Array.from({ length: seeded }, (_, i) => args["seed-text"].replace("{i}", i + 1));
const ownTexts = Array.from({ length: sent }, (_, i) => `after the reload ${i + 1}?`);

const browser = await launchChromium(timeout);

const summary = { ok: false, step: "start" };
let page = null;
try {
  const opened = await openLoggedIn(browser, args.url, args.user, args.password, timeout);
  page = opened.page;
  const errors = opened.errors;
  await page.fill("#room-input", args.room);
  await page.click("#join-form button[type=submit]");
  await page.waitForSelector("#room-list button.current[data-joined=true]");
  await page.waitForSelector("#text:not([disabled])");

  // 1. The latest page of history, shown on join.
  summary.step = "history on join";
  const latest = seedTexts.slice(-PAGE);
  await waitForMessages(page, "joining did not show the room's latest messages", timeout, (shown) =>
    onceInOrder(shown, latest),
  );
  if (seeded > PAGE) {
    await page.waitForSelector("#messages li.history button", { timeout }).catch(() => {
      throw new Error(`${seeded} messages in the room but no "Load older messages" above the latest ${PAGE}`);
    });
  }
  await page.screenshot({ path: join(artifacts, "history-1-joined.png") });

  // 2. Scrolled to the top: the older ones, the first message on screen left where it was.
  summary.step = "older history on scroll";
  const anchorText = latest[0];
  // How far below the list's top the message with `text` is on screen, or (inContent) in
  // the list's content (where it is on screen once scrolled to the top).
  const offsetOf = (text, inContent) =>
    page.evaluate(
      ([text, inContent]) => {
        const list = document.getElementById("messages");
        const li = [...list.querySelectorAll("li")].find(
          (li) => li.querySelector(".text")?.textContent === text,
        );
        if (!li) return null;
        const onScreen = li.getBoundingClientRect().top - list.getBoundingClientRect().top;
        return Math.round(onScreen + (inContent ? list.scrollTop : 0));
      },
      [text, inContent],
    );
  // Read before the scroll that starts the loading.
  const before = await offsetOf(anchorText, true);
  await page.evaluate(() => {
    document.getElementById("messages").scrollTop = 0;
  });
  await waitForMessages(page, "scrolling to the top did not load the older messages", timeout, (shown) =>
    onceInOrder(shown, seedTexts),
  );
  await page.waitForSelector("#messages li.history.start", { timeout }).catch(() => {
    throw new Error('all the messages shown but not "The beginning of #room" (`more` never false?)');
  });
  const after = await offsetOf(anchorText, false);
  summary.anchor = { before, after };
  // The older page went in above: without the scroll kept, the anchor would have moved down
  // by the height of every message added (tens of pixels each).
  if (before === null || after === null || Math.abs(after - before) > 40) {
    throw new Error(
      `loading older messages moved the view: "${anchorText}" was ${before} px below the ` +
        `list's top, is now ${after} px`,
    );
  }
  await page.screenshot({ path: join(artifacts, "history-2-older.png") });

  // 3. Own messages, a reload, and the room again by itself, with its history.
  summary.step = "reload";
  for (const text of ownTexts) {
    await page.fill("#text", text);
    await page.click("#send");
    await waitForMessages(page, "a message sent from the page was not shown", timeout, (shown) =>
      shown.some((m) => m.text === text && m.from === args.user) ? null : `no "${text}"`,
    );
  }
  // Stored, not pending (a pending one would not be in the history after the reload).
  await waitForMessages(page, "the page's own messages stayed pending", timeout, (shown) =>
    shown.some((m) => m.pending) ? "some are still pending" : null,
  );
  await page.reload();
  await page.waitForSelector("#state[data-state=connected]");
  await page.waitForSelector("#room-list button.current[data-joined=true]", { timeout }).catch(() => {
    throw new Error(`after the reload the page is not back in #${args.room} by itself`);
  });
  const tail = [...seedTexts, ...ownTexts].slice(-PAGE);
  summary.shown = (
    await waitForMessages(page, "after the reload the page did not show the room's messages", timeout, (shown) =>
      onceInOrder(shown, tail),
    )
  ).length;
  const mine = await page.$$eval("#messages li.mine .text", (els) => els.map((el) => el.textContent));
  if (ownTexts.some((text) => !mine.includes(text))) {
    throw new Error(`after the reload the page's own messages are not marked as its own: ${JSON.stringify(mine)}`);
  }
  summary.escaped = await page.evaluate(() => document.querySelector("#messages .text *") === null);
  if (!summary.escaped) throw new Error("history text was rendered as HTML");
  await page.screenshot({ path: join(artifacts, "history-3-reloaded.png") });

  if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
  summary.step = "done";
  summary.ok = true;
} catch (err) {
  summary.error = String(err && err.stack ? err.stack : err);
  if (page) await page.screenshot({ path: join(artifacts, "history-failure.png") }).catch(() => {});
} finally {
  await browser.close().catch(() => {});
}
console.log(JSON.stringify(summary));
process.exit(summary.ok ? 0 : 1);
