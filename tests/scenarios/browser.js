// Headless Chromium (Debian's /usr/bin/chromium) opens a page; Playwright records a HAR.
// Usage: node browser.js URL HAR_PATH [TIMEOUT_MS]
// The page sets document.title to "done ..." once its sockets are finished.
const { chromium } = require("playwright-core");

(async () => {
  const [url, harPath, timeout] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const context = await browser.newContext({ recordHar: { path: harPath, content: "embed" } });
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForFunction(() => document.title.startsWith("done"), null,
                             { timeout: Number(timeout || 10000) });
  console.log(await page.title());
  await context.close();
  await browser.close();
})().catch((e) => { console.error(e); process.exit(1); });
