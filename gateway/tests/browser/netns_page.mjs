// One user's chat page in headless Debian chromium (playwright-core), run by
// gateway/tests/browser_netns.rs inside a network namespace of its own (`ip netns exec`), so
// that nginx sees the page's own source address. Driven over stdin/stdout, one JSON line per
// step:
//
//   page:  {"step":"joined","instance":I}   logged in through the form, joined --room
//   test:  "send"                            (every page has joined)
//   page:  {"ok":true,"instance":I,...}      sent --text, saw it and --expect-text from --from
//
// On failure the last line is {"ok":false,"error":...} and the exit status non-zero.
// Screenshots go to --artifacts as netns-<user>.png.
//
// node netns_page.mjs --url URL --user alice --password P --room ROOM --text TEXT
//                     --from bob --expect-text TEXT --artifacts DIR [--timeout-ms 15000]
import { join } from "node:path";
import { conversation, launchChromium, parseCommandLine, openLoggedIn } from "./common.mjs";

const { args, timeout, artifacts } = parseCommandLine();

const { answer, report, close } = conversation(timeout);

const browser = await launchChromium(timeout);

const summary = { ok: false, user: args.user };
let page = null;
try {
  const opened = await openLoggedIn(browser, args.url, args.user, args.password, timeout);
  page = opened.page;
  const errors = opened.errors;
  await page.waitForFunction(() => document.getElementById("instance").textContent !== "");
  summary.instance = await page.textContent("#instance");
  await page.fill("#room-input", args.room);
  await page.click("#join-form button[type=submit]");
  await page.waitForSelector("#room-list button.current");
  await page.waitForSelector("#text:not([disabled])");
  report({ step: "joined", instance: summary.instance });

  await answer("send");
  await page.fill("#text", args.text);
  await page.click("#send");
  for (const [name, body] of [
    [args.user, args.text],
    [args.from, args["expect-text"]],
  ]) {
    await page.waitForFunction(
      ([name, body]) =>
        [...document.querySelectorAll("#messages li")].some(
          (li) =>
            li.querySelector(".from")?.textContent === name &&
            li.querySelector(".text")?.textContent === body,
        ),
      [name, body],
    );
  }
  // Still on the same instance: the page never had to reconnect elsewhere.
  summary.instanceAfter = await page.textContent("#instance");
  await page.screenshot({ path: join(artifacts, `netns-${args.user}.png`) });
  if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
  summary.ok = true;
} catch (err) {
  summary.error = String(err && err.stack ? err.stack : err);
  if (page) {
    await page.screenshot({ path: join(artifacts, `netns-${args.user}-failure.png`) }).catch(() => {});
  }
} finally {
  await browser.close().catch(() => {});
}
report(summary);
close();
process.exit(summary.ok ? 0 : 1);
