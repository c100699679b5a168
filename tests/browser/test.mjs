// test.mjs: the pages in a real browser (Debian's chromium through playwright-core), against
// the stack run.sh started (its URLs and ADMIN_TOKEN in the environment). Each test waits
// for what a person would see, with a deadline; screenshots of every page go to SCREENSHOTS.
// Run one test: node test.mjs shop (names: shop, double, signup, expiry, unsubscribe, stop,
// limits, console).
import { chromium } from "playwright-core";
import crypto from "node:crypto";
import assert from "node:assert/strict";
import path from "node:path";
import { execFileSync, spawn } from "node:child_process";

const env = process.env;
const SALES = env.SALES_URL, STOCK = env.STOCK_URL, NOTIFIER = env.NOTIFIER_URL;
const SMS = env.SMS_GATEWAY_URL, TOKEN = env.ADMIN_TOKEN;
const SHOTS = env.SCREENSHOTS;
const SMS_TOKEN = "dozen-local-sms-token"; // the SMS stand-in's account (tools/stack.sh)
const TTL_S = parseFloat(env.SIGNUP_CODE_TTL || "8");

async function api(method, url, body, headers = {}) {
  const r = await fetch(url, { method, headers: { "Content-Type": "application/json", ...headers },
                               body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, body: json, text };
}
const admin = { Authorization: `Bearer ${TOKEN}` };

// Polls fn until it returns a truthy value, or fails after ms with what.
async function until(what, fn, ms = 20000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
}

async function level(sku) {
  const r = await api("GET", `${SALES}/products`);
  return r.body.products.find((p) => p.sku === sku).quantity;
}

// The codes the SMS stand-in "sent" to phone, oldest first.
async function codes(phone) {
  const r = await api("GET", `${SMS}/messages?to=${encodeURIComponent(phone)}`);
  return r.body.messages.map((m) => (m.body.match(/\b(\d{6})\b/) || [])[1]).filter(Boolean);
}
async function nextCode(phone, before) {
  return until(`a new code for ${phone}`, async () => {
    const c = await codes(phone);
    return c.length > before ? c[c.length - 1] : null;
  });
}

async function activePhones() {
  const r = await api("GET", `${NOTIFIER}/subscribers`, undefined, admin);
  return r.body.subscribers.map((s) => s.phone);
}

// The active subscriber whose masked number is masked (GET /subscribers), or undefined.
async function activeSubscriber(masked) {
  const r = await api("GET", `${NOTIFIER}/subscribers`, undefined, admin);
  return r.body.subscribers.find((s) => s.phone === masked);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, name), fullPage: true });
}

const tests = {
  // Order until sold out, see "restocking requested", and the level return on its own.
  async shop(ctx) {
    const sku = "old-fashioned";
    assert.equal((await api("PUT", `${STOCK}/inventory/${sku}`, { quantity: 3 }, admin)).status, 200);
    const page = await ctx.newPage();
    await page.goto(`${SALES}/`);
    const row = page.locator(`li.product[data-sku="${sku}"]`);
    await row.locator(".level", { hasText: "3 left" }).waitFor();
    // the keyboard alone: Tab to the quantity, type, Enter submits
    await row.locator("input").focus();
    await page.keyboard.press("Control+A");
    await page.keyboard.type("3");
    await page.keyboard.press("Enter");
    await row.locator(".msg", { hasText: "Ordered 3 × old-fashioned" }).waitFor();
    await row.locator(".level", { hasText: "Sold out" }).waitFor();
    const box = await row.boundingBox();
    await row.locator("input").fill("1");
    await row.locator("button").click();
    await row.locator(".msg", { hasText: "Restocking requested" }).waitFor();
    // no layout jump: the row keeps its size while the answer and the level change
    const after = await row.boundingBox();
    assert.equal(Math.round(after.height), Math.round(box.height), "the row changed height");
    await shot(page, "shop-sold-out.png");
    // the factory's delivery lands; the page shows it without a reload
    await row.locator(".level", { hasText: /^[1-9][0-9]* left$/ }).waitFor({ timeout: 60000 });
    assert.ok((await level(sku)) > 0);
    await shot(page, "shop.png");
    // a phone's width: nothing wider than the screen
    await page.setViewportSize({ width: 360, height: 740 });
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(wide <= 360, `the page is ${wide}px wide on a 360px screen`);
    await shot(page, "shop-phone.png");
    // and no layout jump there either: the row is as high with no answer (a fresh page),
    // with the sold-out answer, with the longest one (more than there is, restocking
    // requested) and with an order's
    const heights = {};
    const height = async (what) => { heights[what] = Math.round((await row.boundingBox()).height); };
    await height("sold out, restocking requested");
    await row.locator("input").fill("1000");
    await row.locator("button").click();
    await row.locator(".msg", { hasText: /^Only \d+ left, you asked for 1000\. Restocking requested/ }).waitFor();
    await height("only N left, restocking requested");
    await row.locator("input").fill("1");
    await row.locator("button").click();
    await row.locator(".msg", { hasText: "Ordered 1 × old-fashioned" }).waitFor();
    await height("ordered");
    await page.reload();
    await row.locator(".level", { hasText: / left$|Sold out/ }).waitFor();
    assert.equal(await row.locator(".msg").innerText(), "");
    await height("no answer");
    assert.equal(new Set(Object.values(heights)).size, 1,
                 `the row's height changes at 360px: ${JSON.stringify(heights)}`);
    await page.close();
  },

  // A double click (and a retried request with its key) orders once.
  async double(ctx) {
    const sku = "strawberry";
    assert.equal((await api("PUT", `${STOCK}/inventory/${sku}`, { quantity: 10 }, admin)).status, 200);
    const page = await ctx.newPage();
    const keys = [];
    page.on("request", (r) => { if (r.url().endsWith("/orders")) keys.push(r.headers()["idempotency-key"]); });
    await page.goto(`${SALES}/`);
    const row = page.locator(`li.product[data-sku="${sku}"]`);
    await row.locator(".level", { hasText: "10 left" }).waitFor();
    await row.locator("button").dblclick();
    await row.locator(".msg", { hasText: "Ordered 1 × strawberry" }).waitFor();
    await row.locator(".level", { hasText: "9 left" }).waitFor();
    assert.equal(await level(sku), 9, "a double click ordered twice");
    assert.ok(keys.length >= 1 && keys.every((k) => k && k === keys[0]), `keys: ${keys}`);
    // the same key again (a retry after a lost answer) replays the first answer
    const again = await api("POST", `${SALES}/orders`, { sku, quantity: 1 }, { "Idempotency-Key": keys[0] });
    assert.equal(again.status, 201);
    assert.equal(await level(sku), 9);
    // the next click is a new order
    await row.locator("button").click();
    await row.locator(".level", { hasText: "8 left" }).waitFor();
    await page.close();
  },

  // Sign up with the code from the SMS stand-in, with back-in-stock alerts ticked from the
  // product list; a wrong code is refused. Then the list failing to load: the bulletin alone.
  async signup(ctx) {
    const phone = "+821055500001";
    const products = (await api("GET", `${NOTIFIER}/signup/products`)).body.products.map((p) => p.sku);
    assert.ok(products.includes("glazed") && products.includes("chocolate"), `products: ${products}`);
    const page = await ctx.newPage();
    // the list arrives late: the form below it must not move when it does
    let release;
    const held = new Promise((r) => { release = r; });
    await page.route("**/signup/products", async (route) => { await held; await route.continue(); });
    await page.goto(`${NOTIFIER}/signup`);
    const sec = page.locator("#subscribe");
    const alerts = sec.getByRole("group", { name: "Back-in-stock alerts" });
    await alerts.getByText("Loading the products…").waitFor();
    const send = sec.getByRole("button", { name: "Send me a code" });
    const y0 = (await send.boundingBox()).y;
    release();
    await alerts.getByRole("checkbox", { name: "glazed", exact: true }).waitFor();
    assert.equal(Math.round((await send.boundingBox()).y), Math.round(y0), "the form moved when the list arrived");
    await page.unroute("**/signup/products");
    // the page lists exactly the products
    const boxes = await alerts.getByRole("checkbox").evaluateAll((bs) => bs.map((b) => b.value));
    assert.deepEqual(boxes, products);
    await sec.getByLabel("Phone number").fill(phone);
    // the keyboard alone: Tab to a product, Space ticks it
    await alerts.getByRole("checkbox", { name: "chocolate", exact: true }).focus();
    await page.keyboard.press("Space");
    await alerts.getByRole("checkbox", { name: "glazed", exact: true }).check();
    assert.ok(await alerts.getByRole("checkbox", { name: "chocolate", exact: true }).isChecked());
    const before = (await codes(phone)).length;
    await send.click();
    await sec.locator(".msg", { hasText: "We sent a code to +82******0001" }).waitFor();
    const code = await nextCode(phone, before);
    const wrong = code === "000000" ? "111111" : "000000";
    await sec.getByLabel("Code from the SMS").fill(wrong);
    await sec.getByLabel("Code from the SMS").press("Enter");
    await sec.locator(".msg", { hasText: "wrong code; 4 more tries" }).waitFor();
    assert.ok(!(await activePhones()).includes("+82******0001"), "a wrong code subscribed");
    await sec.getByLabel("Code from the SMS").fill(code);
    await sec.getByRole("button", { name: "Confirm" }).click();
    await sec.locator(".msg", { hasText: "You are subscribed, with alerts for chocolate, glazed" }).waitFor();
    const sub = await activeSubscriber("+82******0001");
    assert.ok(sub, "not subscribed");
    assert.deepEqual(sub.skus, ["chocolate", "glazed"]);
    // the same code again is spent
    const reuse = await api("POST", `${NOTIFIER}/signup/confirm`, { phone, code });
    assert.equal(reuse.status, 410);
    await shot(page, "signup.png");
    // a phone's width: nothing wider than the screen
    await page.setViewportSize({ width: 360, height: 740 });
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(wide <= 360, `the page is ${wide}px wide on a 360px screen`);
    await page.close();

    // the list cannot be loaded: said plainly, and the bulletin alone still works
    const alone = "+821055500091";
    const p2 = await ctx.newPage();
    await p2.route("**/signup/products", (route) => route.fulfill({
      status: 503, contentType: "application/json", body: '{"error": "database unavailable, try again"}' }));
    await p2.goto(`${NOTIFIER}/signup`);
    const s2 = p2.locator("#subscribe");
    await s2.getByText("The products could not be loaded, so alerts cannot be chosen now").waitFor();
    assert.equal(await s2.getByRole("checkbox").count(), 0);
    await s2.getByLabel("Phone number").fill(alone);
    const before2 = (await codes(alone)).length;
    await s2.getByRole("button", { name: "Send me a code" }).click();
    await s2.getByLabel("Code from the SMS").fill(await nextCode(alone, before2));
    await s2.getByRole("button", { name: "Confirm" }).click();
    await s2.locator(".msg", { hasText: "You are subscribed. Reply STOP" }).waitFor();
    assert.deepEqual((await activeSubscriber("+82******0091")).skus, []);
    await p2.close();
  },

  // A code past its time is refused, even the right one.
  async expiry(ctx) {
    const phone = "+821055500002";
    const page = await ctx.newPage();
    await page.goto(`${NOTIFIER}/signup`);
    const sec = page.locator("#subscribe");
    await sec.getByLabel("Phone number").fill(phone);
    const before = (await codes(phone)).length;
    await sec.getByRole("button", { name: "Send me a code" }).click();
    const code = await nextCode(phone, before);
    const sent = Date.now();
    await sec.getByLabel("Code from the SMS").fill(code);
    // the condition under test is time itself: wait until the code's life is over
    await page.waitForTimeout(Math.max(0, TTL_S * 1000 + 500 - (Date.now() - sent)));
    await sec.getByRole("button", { name: "Confirm" }).click();
    await sec.locator(".msg", { hasText: "no valid code for this number (it may have expired)" }).waitFor();
    assert.ok(!(await activePhones()).includes("+82******0002"));
    await shot(page, "signup-expired.png");
    await page.close();
  },

  // Unsubscribe on the page, with a code.
  async unsubscribe(ctx) {
    const phone = "+821055500003";
    assert.equal((await api("POST", `${NOTIFIER}/subscribers`, { phone }, admin)).status, 201);
    const page = await ctx.newPage();
    await page.goto(`${NOTIFIER}/signup`);
    const sec = page.locator("#unsubscribe");
    await sec.getByLabel("Phone number").fill(phone);
    const before = (await codes(phone)).length;
    await sec.getByRole("button", { name: "Send me a code" }).click();
    const code = await nextCode(phone, before);
    // nobody else can: the unsubscribe needs the code too
    assert.equal((await api("POST", `${NOTIFIER}/unsubscribe/confirm`, { phone, code: "123456" === code ? "654321" : "123456" })).status, 400);
    assert.ok((await activePhones()).includes("+82******0003"));
    await sec.getByLabel("Code from the SMS").fill(code);
    await sec.getByRole("button", { name: "Unsubscribe" }).click();
    await sec.locator(".msg", { hasText: "You are unsubscribed" }).waitFor();
    assert.ok(!(await activePhones()).includes("+82******0003"));
    await page.close();
  },

  // Replying STOP: Twilio's signed inbound-message webhook opts the number out.
  async stop() {
    const phone = "+821055500004";
    assert.equal((await api("POST", `${NOTIFIER}/subscribers`, { phone }, admin)).status, 201);
    const url = `${NOTIFIER}/sms/inbound`;
    const params = { From: phone, To: "dozen", Body: "Stop", MessageSid: "SM" + "0".repeat(32) };
    const data = url + Object.keys(params).sort().map((k) => k + params[k]).join("");
    const sig = crypto.createHmac("sha1", SMS_TOKEN).update(data).digest("base64");
    const post = (s) => fetch(url, { method: "POST", body: new URLSearchParams(params),
                                     headers: { "X-Twilio-Signature": s } });
    assert.equal((await post("forged")).status, 403);
    assert.ok((await activePhones()).includes("+82******0004"), "a forged STOP opted out");
    const r = await post(sig);
    assert.equal(r.status, 200);
    assert.match(await r.text(), /<Response><\/Response>/);
    assert.ok(!(await activePhones()).includes("+82******0004"));
  },

  // The limits, through the API: codes per number, wrong codes per code, and per client.
  async limits() {
    const phone = "+821055500005";
    for (let i = 0; i < 5; i++)
      assert.equal((await api("POST", `${NOTIFIER}/signup`, { phone })).status, 202, `code ${i + 1}`);
    const sixth = await api("POST", `${NOTIFIER}/signup`, { phone });
    assert.equal(sixth.status, 429);
    assert.match(sixth.body.error, /too many codes for this number/);
    const code = (await codes(phone)).pop();
    const wrong = code === "999999" ? "888888" : "999999";
    for (let i = 0; i < 5; i++)
      assert.equal((await api("POST", `${NOTIFIER}/signup/confirm`, { phone, code: wrong })).status, 400);
    // void now, even with the right code
    const locked = await api("POST", `${NOTIFIER}/signup/confirm`, { phone, code });
    assert.equal(locked.status, 429);
    assert.ok(!(await activePhones()).includes("+82******0005"));
    // bad input: a clear JSON error
    for (const [body, re] of [[{ phone: "12345" }, /E\.164/], [{ phone, code: "12" }, /6 digits/],
                              [{ phone, extra: 1 }, /unknown field/]]) {
      const url = body.code !== undefined ? `${NOTIFIER}/signup/confirm` : `${NOTIFIER}/signup`;
      const r = await api("POST", url, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(r.body.error, re);
    }
    // one client address asks for codes for many numbers: refused within the limit
    let refused = null;
    for (let i = 10; i < 40 && !refused; i++) {
      const r = await api("POST", `${NOTIFIER}/signup`, { phone: `+8210555000${i}` });
      if (r.status === 429) refused = r;
      else assert.equal(r.status, 202);
    }
    assert.ok(refused, "no per-client limit within 30 requests");
    assert.match(refused.body.error, /too many requests from this address/);
  },

  // The console: a lagging group, a dead letter, and its replay (once).
  async console(ctx) {
    const [at, ceId] = execFileSync(env.PYTHON || "/usr/bin/python3", ["console_setup.py", "dead"], { encoding: "utf8" }).trim().split(" ");
    execFileSync(env.PYTHON || "/usr/bin/python3", ["console_setup.py", "lag", "3"], { encoding: "utf8" });
    // the database's side: an outbox backlog, a retry pending, a bulletin with failed checks
    const seeded = JSON.parse(execFileSync(env.PYTHON || "/usr/bin/python3", ["console_setup.py", "db"], { encoding: "utf8" }));
    const web = spawn(path.join(env.DOZEN_ROOT, "bin", "dozenctl"), ["web", "--port", "0"],
                      { stdio: ["ignore", "pipe", "inherit"] });
    try {
      const url = await new Promise((resolve, reject) => {
        let out = "";
        const t = setTimeout(() => reject(new Error("dozenctl web did not say its URL")), 10000);
        web.stdout.on("data", (d) => {
          out += d;
          const m = out.match(/(http:\/\/127\.0\.0\.1:\d+\/)/);
          if (m) { clearTimeout(t); resolve(m[1]); }
        });
        web.on("exit", (c) => reject(new Error(`dozenctl web exited (${c})`)));
      });
      const page = await ctx.newPage();
      await page.goto(url);
      // the stock group lags by the three records nobody reads
      await page.locator('#groups tr.lagging[data-group="stock"]', { hasText: "stock.replenished/0: 3" })
        .waitFor({ timeout: 60000 });
      const row = page.locator(`#dlq tr[data-at="${at}"]`);
      await row.waitFor({ timeout: 30000 });
      await row.getByText("browser test: the console must show me").waitFor();
      assert.match(await row.innerText(), new RegExp(ceId));
      assert.equal(await row.locator(".replayed").innerText(), "no");
      // read-only without the token
      assert.ok(await row.getByRole("button", { name: `Replay ${at}` }).isDisabled());
      const refused = await api("POST", `${url}api/dlq/replay`, { at });
      assert.equal(refused.status, 401);
      // the filter
      await page.locator("#dlq input[name=reason]").fill("no_such_reason");
      await page.locator("#dlq form button").click();
      await page.locator("#dlq .body", { hasText: "None." }).waitFor();
      await page.locator("#dlq input[name=reason]").fill("handler_failed");
      await page.locator("#dlq form button").click();
      await row.waitFor();
      await page.locator("#token").fill(TOKEN);
      await row.getByRole("button", { name: `Replay ${at}` }).click();
      await page.locator("#replay-msg", { hasText: "replayed 1" }).waitFor({ timeout: 30000 });
      await row.locator(".replayed", { hasText: "yes" }).waitFor({ timeout: 30000 });
      assert.ok(await row.getByRole("button", { name: `Replay ${at}` }).isDisabled());
      // once: a second replay of the same record does nothing
      const again = await api("POST", `${url}api/dlq/replay`, { at }, admin);
      assert.equal(again.status, 200);
      assert.match(again.body.out, /replayed 0, skipped 1/);
      const html = await page.content();
      assert.ok(!html.includes(TOKEN) || (await page.locator("#token").inputValue()) === TOKEN);
      assert.ok(!/\+\d{8,15}/.test(await page.locator("main").innerText()), "a full phone number is shown");
      // the trace of one order, the same story as dozenctl trace
      const order = await api("POST", `${SALES}/orders`, { sku: "glazed", quantity: 1 });
      assert.equal(order.status, 201);
      await page.locator("#trace input[name=id]").fill(order.body.order_id);
      await page.locator("#trace form button").click();
      await page.locator('#trace tr[data-kind="order"]').waitFor({ timeout: 30000 });
      await page.locator('#trace tr[data-kind="event"]', { hasText: "order.completed" }).first().waitFor({ timeout: 30000 });
      // the outbox backlog: the producer, its unsent rows, the oldest one's time
      const local = (t) => page.evaluate((x) => new Date(x).toLocaleString(), t);
      const cells = async (tr) => (await tr.locator("td").allInnerTexts()).map((c) => c.trim());
      const outboxRow = page.locator("#outbox tr", { has: page.locator("td:first-child", { hasText: seeded.producer }) });
      await outboxRow.waitFor({ timeout: 30000 });
      assert.deepEqual(await cells(outboxRow), [seeded.producer, String(seeded.unsent), await local(seeded.oldest)]);
      // retries pending: group, reason, how many, the next due time
      const retryRow = page.locator("#retries tr", { has: page.locator("td:first-child", { hasText: seeded.group }) });
      await retryRow.waitFor({ timeout: 30000 });
      assert.deepEqual(await cells(retryRow),
                       [seeded.group, seeded.reason, String(seeded.pending), await local(seeded.next_due)]);
      // the bulletin with its attempts and the reason of each failed check
      const bulletinRow = page.locator("#bulletins tr", { has: page.locator("td:first-child", { hasText: seeded.day }) });
      await bulletinRow.waitFor({ timeout: 30000 });
      const b = await cells(bulletinRow);
      assert.deepEqual(b.slice(0, 4), [seeded.day, "unavailable", "2", "stale_date"]);
      assert.deepEqual(b[4].split("\n"), seeded.failures.map(([n, reason, error]) => `#${n} ${reason}: ${error}`));
      // topics with their end offsets (dozenctl topics is slow on the dev broker): the
      // dead letter written above is below dead-letter/0's end
      const dlTopic = page.locator("#topics tr", { has: page.locator("td:first-child", { hasText: /^dead-letter$/ }) });
      await dlTopic.waitFor({ timeout: 30000 });
      const [dlName, dlParts, dlEnds] = await cells(dlTopic);
      assert.equal(dlName, "dead-letter");
      assert.match(dlParts, /^[1-9]\d*$/);
      const ends = Object.fromEntries(dlEnds.split(/\s+/).map((e) => e.split(":").map(Number)));
      assert.equal(Object.keys(ends).length, Number(dlParts), `end offsets ${dlEnds}`);
      assert.ok(ends[Number(at.split(":")[0])] > Number(at.split(":")[1]), `dead-letter end offsets ${dlEnds}, dead letter at ${at}`);
      await page.evaluate(() => { document.querySelector("#dlq").scrollLeft = 0; });
      await shot(page, "console.png");
      await page.close();
    } finally {
      web.kill("SIGTERM");
    }
  },
};

const only = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
         "--disable-default-apps", "--disable-sync", "--no-first-run", "--disable-gpu"],
});
let failed = 0;
try {
  for (const [name, fn] of Object.entries(tests)) {
    if (only.length && !only.includes(name)) continue;
    const ctx = await browser.newContext({ viewport: { width: 1000, height: 800 } });
    const started = Date.now();
    try {
      await fn(ctx);
      console.log(`ok   ${name} (${Date.now() - started} ms)`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${name}: ${e.stack || e}`);
    } finally {
      await ctx.close();
    }
  }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
