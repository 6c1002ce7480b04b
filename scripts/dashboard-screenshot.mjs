// Saves a screenshot of a running chiploc dashboard's map: what the README
// shows, taken by scripts/world.sh (WORLD_SCREENSHOT=FILE) from a simulated
// world. Debian's chromium, driven by playwright-core from npm; nothing
// downloads a browser.
//   node scripts/dashboard-screenshot.mjs URL OUT.png NODE_MODULES_DIR
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const [url, out, nodeModules] = process.argv.slice(2);
if (!url || !out || !nodeModules) {
  console.error('usage: node dashboard-screenshot.mjs URL OUT.png NODE_MODULES_DIR');
  process.exit(2);
}
const require = createRequire(path.join(path.resolve(nodeModules), 'noop.js'));
const { chromium } = require('playwright-core');

const profile = mkdtempSync(path.join(tmpdir(), 'chiploc-shot-'));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1440, height: 900 },
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--no-first-run'],
});
try {
  const page = browser.pages()[0] || await browser.newPage();
  await page.goto(url);
  // Every chip drawn, and the tiles of nothing: the borders are the base layer.
  await page.waitForSelector('path.chip-marker', { timeout: 30000 });
  await page.waitForLoadState('networkidle');
  await page.screenshot({ path: out });
  console.log('screenshot: ' + out);
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
