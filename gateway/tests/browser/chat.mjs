// Two real browser pages (headless Debian chromium, driven by playwright-core) as two users on
// two gateway instances: both log in through the page, join one room, type and send; each must
// see the other's typing notice and message. Prints one JSON summary line; exits non-zero on
// failure. Screenshots go to --artifacts.
//
// node chat.mjs --a URL --b URL --user-a alice --password-a P --user-b bob --password-b P
//               --room ROOM --artifacts DIR [--timeout-ms 15000]
import { join } from "node:path";
import { launchChromium, parseCommandLine } from "./common.mjs";

const { args, timeout, artifacts } = parseCommandLine();

const browser = await launchChromium(timeout);

const summary = { ok: false };
const pages = [];
try {
  // Two contexts: two separate cookie jars, as two people on two machines.
  async function open(url, user, password, width) {
    const context = await browser.newContext({ viewport: { width, height: 640 } });
    const page = await context.newPage();
    page.setDefaultTimeout(timeout);
    const errors = [];
    page.on("pageerror", (err) => errors.push(String(err)));
    await page.goto(url);
    await page.fill("#username", user);
    await page.fill("#password", password);
    await page.click("#login-form button[type=submit]");
    await page.waitForSelector("#state[data-state=connected]");
    await page.waitForFunction(() => document.getElementById("instance").textContent !== "");
    const entry = { page, user, errors, instance: await page.textContent("#instance") };
    pages.push(entry);
    return entry;
  }
  const a = await open(args.a, args["user-a"], args["password-a"], 900);
  const b = await open(args.b, args["user-b"], args["password-b"], 375);
  summary.instances = [a.instance, b.instance];
  if (a.instance === b.instance) throw new Error(`both pages on instance ${a.instance}`);

  for (const { page } of [a, b]) {
    await page.fill("#room-input", args.room);
    await page.click("#join-form button[type=submit]");
    await page.waitForSelector("#room-list button.current");
    await page.waitForSelector("#text:not([disabled])");
  }

  async function converse(from, to, text) {
    // Typing: the other page shows "<from> is typing…".
    await from.page.type("#text", text.slice(0, 3));
    await to.page.waitForFunction(
      (name) => document.getElementById("typing").textContent.startsWith(name + " is typing"),
      from.user,
    );
    await from.page.type("#text", text.slice(3));
    await from.page.click("#send");
    for (const page of [from.page, to.page]) {
      await page.waitForFunction(
        ([name, body]) =>
          [...document.querySelectorAll("#messages li")].some(
            (li) => li.querySelector(".from")?.textContent === name &&
              li.querySelector(".text")?.textContent === body,
          ),
        [from.user, text],
      );
    }
  }
  await converse(a, b, `Hi ${b.user}, <b>not bold</b> & fine?`);
  await converse(b, a, `Hello ${a.user}, all good here.`);
  // A typing notice left showing for the screenshot: A starts a reply.
  await a.page.type("#text", "Great, see");
  await b.page.waitForFunction(
    (name) => document.getElementById("typing").textContent.startsWith(name + " is typing"),
    a.user,
  );

  // Escaping: the markup arrived as text, not as an element.
  summary.escaped = await b.page.evaluate(() => document.querySelector("#messages b") === null);
  if (!summary.escaped) throw new Error("message markup was rendered as HTML");
  summary.members = await b.page.$$eval("#members li", (lis) => lis.map((li) => li.textContent));

  await a.page.screenshot({ path: join(artifacts, "page-a.png") });
  await b.page.screenshot({ path: join(artifacts, "page-b.png") });
  // Both side by side in one picture: A (desktop) and B (375 px phone) mid-conversation.
  const side = await browser.newPage({ viewport: { width: 1300, height: 660 } });
  const [pngA, pngB] = await Promise.all([
    a.page.screenshot().then((b) => b.toString("base64")),
    b.page.screenshot().then((b) => b.toString("base64")),
  ]);
  await side.setContent(
    `<body style="margin:0;display:flex;gap:10px;padding:10px;background:#c9ced6">` +
      `<img src="data:image/png;base64,${pngA}"><img src="data:image/png;base64,${pngB}"></body>`,
  );
  await side.screenshot({ path: join(artifacts, "chat-two-instances.png") });

  const errors = pages.flatMap((p) => p.errors);
  if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
  summary.ok = true;
} catch (err) {
  summary.error = String(err && err.stack ? err.stack : err);
  for (const [i, { page }] of pages.entries()) {
    await page.screenshot({ path: join(artifacts, `failure-${i}.png`) }).catch(() => {});
  }
} finally {
  await browser.close().catch(() => {});
}
console.log(JSON.stringify(summary));
process.exit(summary.ok ? 0 : 1);
