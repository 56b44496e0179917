// Record a HAR of a page that opens a WebSocket, with Playwright's own HAR recorder.
// Usage: node record_har.mjs HTTP_URL OUT.har embed|attach
// Run by make_playwright_har.py, which starts the loopback server this page talks to.
import { chromium } from 'playwright-core';

const [url, out, content] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
const context = await browser.newContext({ recordHar: { path: out, content } });
const page = await context.newPage();
await page.goto(url);
// The page sets document.title to "done" once the server has closed the socket.
await page.waitForFunction(() => document.title === 'done', null, { timeout: 10000 });
await context.close();
await browser.close();
