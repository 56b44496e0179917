// Opens the chat page in headless Chromium (Debian's /usr/bin/chromium) and records a HAR.
// The page opens the WebSocket, sends one message and reports the close in its title.
// Usage: node browser.js URL HAR_PATH
const { chromium } = require("playwright-core");

(async () => {
  const [url, harPath] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const context = await browser.newContext({ recordHar: { path: harPath } });
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForFunction(() => document.title.startsWith("closed"), null, { timeout: 10000 });
  console.log("browser saw:", await page.title());
  await context.close();
  await browser.close();
})().catch((e) => { console.error(e); process.exit(1); });
