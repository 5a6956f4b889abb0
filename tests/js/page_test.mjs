// Loads the web chat page of `dsv4 serve` in headless Chromium and checks that a reply streams in:
//   node page_test.mjs <base-url> <api-key> <screenshot.png>
import { chromium } from "playwright-core";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [base, apiKey, shot] = process.argv.slice(2);
const fail = (msg) => { console.error("page_test: FAIL: " + msg); process.exit(1); };

// A fresh profile directory (--user-data-dir) for every run.
const browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "dsv4-chromium-")), {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1000, height: 700 },
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--no-first-run"],
});
try {
  const page = browser.pages()[0] || (await browser.newPage());
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  // Count the SSE chunks the page receives, to prove the reply streamed rather than arrived whole.
  let sse = null;
  page.on("response", async (r) => {
    if (r.url().endsWith("/v1/chat/completions")) sse = await r.text().catch(() => null);
  });
  await page.goto(base + "/", { waitUntil: "load" });
  if ((await page.title()) !== "dsv4 chat") fail("page title is " + (await page.title()));
  await page.fill("#key", apiKey);
  await page.dispatchEvent("#key", "change");
  await page.waitForFunction(() => document.getElementById("model").textContent.startsWith("model: "), null, { timeout: 15000 })
    .catch(async () => fail("model name not shown: " + (await page.textContent("#model"))));
  await page.fill("#max", "12");
  await page.fill("#temp", "0");

  // 1. chat mode: the answer streams into the assistant bubble
  await page.fill("#input", "Hello there!");
  await page.press("#input", "Enter");
  await page.waitForSelector(".msg.assistant .stats", { timeout: 90000 });
  const answer = await page.textContent(".msg.assistant .content");
  if (!answer || !answer.length) fail("no answer text in the page");
  if (await page.$(".msg.error")) fail("the page shows an error: " + (await page.textContent(".msg.error")));
  const userText = await page.textContent(".msg.user");
  if (!userText.includes("Hello there!")) fail("user message not shown");

  // 2. thinking mode: the reasoning goes into a collapsed <details>
  await page.check("#think");
  await page.fill("#input", "Think about it.");
  await page.press("#input", "Enter");
  await page.waitForFunction(() => document.querySelectorAll(".msg.assistant .stats").length === 2, null, { timeout: 90000 });
  const details = await page.$$(".msg.assistant details.reasoning");
  if (details.length !== 1) fail("expected one reasoning <details>, got " + details.length);
  if (await details[0].evaluate((d) => d.open)) fail("reasoning should start collapsed");
  const reasoning = await details[0].evaluate((d) => d.querySelector(".reasoning-text").textContent);
  if (!reasoning.length) fail("empty reasoning");
  await details[0].evaluate((d) => { d.open = true; });
  if (sse === null || (sse.match(/^data: /gm) || []).length < 3) fail("the reply did not arrive as an SSE stream");
  if (errors.length) fail("page errors: " + errors.join("; "));
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`page_test: OK (answer ${answer.length} chars, reasoning ${reasoning.length} chars, screenshot ${shot})`);
} finally {
  await browser.close();
}
