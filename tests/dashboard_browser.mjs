// The dashboard page in a real browser: Debian's Chromium, headless, driven
// by playwright-core (never its own browser download), against a running
// `chiploc dashboard` over a seeded database (tests/test_dashboard_browser.sh
// starts both). What the page shows is checked against the JSON API:
//   - every chip of /api/chips is a marker with the colour of its verdict,
//     every landmark a marker of its health, every CONSISTENT chip a region,
//     every open alert an entry of the side list; the filters filter;
//   - clicking a chip whose site is excluded opens its page: SITE_EXCLUDED,
//     its alerts, its history, its chain;
//   - serials, operator and landmark names and alert details that look like
//     HTML (the seed has them) appear as the very same text, and nothing of
//     them runs: no window.__pwned, no dialog, no element the page did not
//     make, no request for their images;
//   - no console error, no uncaught exception, no Content-Security-Policy
//     violation, no failed request.
//   - it refreshes by itself, as often as /api/summary's refresh_s says.
// Screenshots of the map and of the chip page go to OUT_DIR.
//
// usage: node dashboard_browser.mjs BASE_URL OUT_DIR NODE_MODULES_DIR
// Exit status 0 when every check passes, 1 otherwise.
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const [base, outDir, nodeModules] = process.argv.slice(2);
if (!base || !outDir || !nodeModules) {
  console.error('usage: node dashboard_browser.mjs BASE_URL OUT_DIR NODE_MODULES_DIR');
  process.exit(2);
}
const require = createRequire(path.join(path.resolve(nodeModules), 'noop.js'));
const { chromium } = require('playwright-core');

// The colours the page must give each verdict (docs/DASHBOARD.md, "The page").
const COLOURS = {
  INSIDE: { stroke: '#1a7f37', fill: '#2da44e' },
  OUTSIDE: { stroke: '#a40e26', fill: '#e5484d' },
  SITE_EXCLUDED: { stroke: '#d1242f', fill: '#ffe2e0' },
  UNDETERMINED: { stroke: '#9a6700', fill: '#f5a623' },
  INCONSISTENT: { stroke: '#6639ba', fill: '#a371f7' },
  INSUFFICIENT: { stroke: '#57606a', fill: '#8c959f' },
  UNKNOWN: { stroke: '#57606a', fill: '#8c959f' },
  NONE: { stroke: '#8c959f', fill: '#ffffff' },
};
const LANDMARK_FILL = { healthy: '#3e7bfa', stale: '#f5c542', retired: '#d0d7de',
  revoked: '#57606a' };

function verdictOf(c) {
  if (!c.consistency) return 'NONE';
  if (c.consistency !== 'CONSISTENT') return c.consistency;
  if (c.site_verdict === 'SITE_EXCLUDED') return 'SITE_EXCLUDED';
  return c.region_verdict || 'UNKNOWN';
}

// The selector of a chip's marker: a JSON string is a valid CSS string.
function markerOf(serial) {
  return 'path.chip-marker[data-serial=' + JSON.stringify(serial) + ']';
}

let failures = 0;
let passes = 0;
function check(ok, what) {
  if (ok) {
    passes++;
    console.log('ok - ' + what);
  } else {
    failures++;
    console.log('FAIL: ' + what);
  }
}
function same(got, want, what) {
  const ok = JSON.stringify(got) === JSON.stringify(want);
  check(ok, what + (ok ? '' : ': got ' + JSON.stringify(got) + ', want ' + JSON.stringify(want)));
}

async function api(p) {
  const r = await fetch(base + p);
  if (!r.ok) throw new Error(p + ': HTTP ' + r.status);
  return r.json();
}

const chips = (await api('/api/chips')).chips;
const landmarks = (await api('/api/landmarks')).landmarks;
const openAlerts = (await api('/api/alerts?state=open')).alerts;
const regions = (await api('/api/chips.geojson')).features
  .filter((f) => f.properties && f.properties.kind === 'chip_region' && f.geometry);
const borders = (await api('/api/borders.geojson')).features;
const summary = await api('/api/summary');

// What the seed must hold for the checks below to mean anything.
const smuggled = chips.find((c) => c.site_verdict === 'SITE_EXCLUDED');
const hostileSerial = chips.find((c) => c.serial.includes('<script'));
const hostileOperator = chips.find((c) => (c.operator || '').includes('onerror'));
check(chips.length >= 3, 'the seeded database has chips (' + chips.length + ')');
check(smuggled !== undefined, 'a chip is SITE_EXCLUDED');
check(hostileSerial !== undefined, 'a chip serial contains <script');
check(hostileOperator !== undefined, 'a chip operator contains onerror');
check(borders.length > 0, 'the borders have features (' + borders.length + ')');
if (failures) process.exit(1);

const profile = mkdtempSync(path.join(tmpdir(), 'chiploc-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--no-first-run'],
  viewport: { width: 1400, height: 900 },
});
const problems = [];
const dialogs = [];
const page = context.pages()[0] || await context.newPage();
// Runs before the page's scripts, outside its CSP: records every violation.
await page.addInitScript(() => {
  window.__csp = [];
  document.addEventListener('securitypolicyviolation', (e) => {
    window.__csp.push(e.violatedDirective + ' ' + e.blockedURI);
  });
});
page.on('console', (m) => { if (m.type() === 'error') problems.push('console: ' + m.text()); });
page.on('pageerror', (e) => problems.push('uncaught: ' + e.message));
page.on('requestfailed', (r) => problems.push('request failed: ' + r.url()));
page.on('response', (r) => { if (r.status() >= 400) problems.push('HTTP ' + r.status() + ' ' + r.url()); });
page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
page.setDefaultTimeout(20000);

mkdirSync(outDir, { recursive: true });
try {
  // ---- the map --------------------------------------------------------------
  const placed = chips.filter((c) => typeof c.site_lat === 'number' && typeof c.site_lon === 'number');
  const doc = await page.goto(base + '/');
  // The CSP checks below mean something only under a policy without inline script.
  const csp = (await doc.allHeaders())['content-security-policy'] || '';
  check(/(^|;)\s*script-src 'self'\s*(;|$)/.test(csp) && /(^|;)\s*style-src 'self'\s*(;|$)/.test(csp) &&
    /(^|;)\s*default-src 'none'/.test(csp), 'the page is served under a strict CSP: ' + csp);
  await page.waitForSelector('#updated[data-state="ok"]');
  await page.waitForFunction((n) => document.querySelectorAll('.chip-marker').length === n,
    placed.length);
  const markers = await page.$$eval('.chip-marker', (els) => els.map((e) => ({
    serial: e.getAttribute('data-serial'), verdict: e.getAttribute('data-verdict'),
    stroke: e.getAttribute('stroke'), fill: e.getAttribute('fill') })));
  const bySerial = new Map(markers.map((m) => [m.serial, m]));
  same(markers.length, placed.length, 'one marker per chip');
  for (const c of placed) {
    const m = bySerial.get(c.serial);
    const v = verdictOf(c);
    check(m !== undefined, 'chip ' + JSON.stringify(c.serial) + ' has a marker');
    if (!m) continue;
    same(m.verdict, v, 'chip ' + JSON.stringify(c.serial) + ' verdict');
    same({ stroke: m.stroke, fill: m.fill }, COLOURS[v],
      'chip ' + JSON.stringify(c.serial) + ' colour for ' + v);
  }

  const lms = await page.$$eval('.landmark-marker', (els) => els.map((e) => ({
    name: e.getAttribute('data-name'), state: e.getAttribute('data-state'),
    fill: e.getAttribute('fill') })));
  same(lms.map((l) => l.name).sort(), landmarks.map((l) => l.name).sort(), 'landmark markers');
  for (const l of landmarks) {
    const m = lms.find((x) => x.name === l.name);
    if (m) same({ state: m.state, fill: m.fill }, { state: l.state, fill: LANDMARK_FILL[l.state] },
      'landmark ' + JSON.stringify(l.name) + ' health');
  }

  const regionSerials = await page.$$eval('.chip-region', (els) =>
    els.map((e) => e.getAttribute('data-serial')));
  same([...new Set(regionSerials)].sort(), [...new Set(regions.map((f) => f.properties.serial))].sort(),
    'a feasible region per CONSISTENT chip');
  check(await page.$('#map canvas') !== null, 'the borders are drawn (canvas layer)');
  // The borders' credit, from the server, shown as text (test_dashboard_browser.sh
  // gives one that looks like HTML).
  await page.waitForFunction(() =>
    document.querySelector('.leaflet-control-attribution').textContent.includes('Borders <img'));
  const credit = await page.$eval('.leaflet-control-attribution', (e) => ({
    text: e.textContent, imgs: e.querySelectorAll('img').length,
  }));
  check(credit.text.includes('Borders <img src=x onerror=alert(1)> & "OSM"') && credit.imgs === 0,
    'the borders credit is shown as text: ' + JSON.stringify(credit.text));

  const listed = await page.$$eval('#alerts li.alert', (els) => els.map((e) => ({
    kind: e.getAttribute('data-kind'), subject: e.getAttribute('data-subject'), text: e.textContent,
    link: e.querySelector('a') ? e.querySelector('a').getAttribute('href') : null })));
  same(listed.length, openAlerts.length, 'one side-list entry per open alert');
  for (const a of openAlerts) {
    const type = a.subject_type || a.subject_kind;
    check(listed.some((l) => l.kind === a.kind && l.subject === a.subject &&
      l.text.includes(a.subject) && (!a.detail || l.text.includes(a.detail)) &&
      l.text.includes(type === 'chip' ? a.subject : type + ' ' + a.subject) &&
      l.link === (type === 'chip' ? '#/chip/' + encodeURIComponent(a.subject) : null)),
    'open alert ' + a.kind + ' of ' + type + ' ' + JSON.stringify(a.subject) +
      ' listed with its text' + (type === 'chip' ? ' and a link to the chip' : ''));
  }
  check(openAlerts.some((a) => (a.subject_type || a.subject_kind) === 'chip'),
    'an open alert is about a chip');
  const updated = await page.textContent('#updated');
  check(/^Updated \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/.test(updated), 'last updated line: ' + updated);

  // Text, not markup: the strings read back as they were sent.
  const opts = await page.$$eval('#f-operator option', (els) => els.map((e) => e.textContent));
  check(opts.includes(hostileOperator.operator), 'the hostile operator is an option, as text');
  await page.hover(markerOf(hostileSerial.serial));
  const tip = await page.waitForSelector('.leaflet-tooltip .tip');
  check((await tip.textContent()).includes(hostileSerial.serial), 'the tooltip shows the hostile serial as text');

  const mapShot = path.join(outDir, 'dashboard-map.png');
  await page.mouse.move(5, 300);
  await page.screenshot({ path: mapShot });
  console.log('screenshot: ' + mapShot);

  // Filters: one operator's chips only, then all again.
  const op = smuggled.operator;
  await page.selectOption('#f-operator', { label: op });
  const filtered = await page.$$eval('.chip-marker', (els) => els.map((e) => e.getAttribute('data-serial')));
  same(filtered.sort(), placed.filter((c) => c.operator === op).map((c) => c.serial).sort(),
    'operator filter ' + JSON.stringify(op));
  await page.selectOption('#f-operator', '');
  await page.selectOption('#f-verdict', 'SITE_EXCLUDED');
  const excl = await page.$$eval('.chip-marker', (els) => els.map((e) => e.getAttribute('data-serial')));
  same(excl.sort(), placed.filter((c) => c.site_verdict === 'SITE_EXCLUDED').map((c) => c.serial).sort(),
    'verdict filter SITE_EXCLUDED');
  await page.selectOption('#f-verdict', '');

  // ---- a smuggled chip's page ---------------------------------------------------
  const detail = await api('/api/chip/' + encodeURIComponent(smuggled.serial));
  await page.click(markerOf(smuggled.serial));
  await page.waitForSelector('#chip-page:not([hidden])');
  await page.waitForFunction((s) => document.getElementById('chip-page').getAttribute('data-serial') === s
    && document.getElementById('chip-verdict') !== null, smuggled.serial);
  same(await page.textContent('#chip-verdict'), 'SITE_EXCLUDED', 'the chip page verdict');
  check(await page.isHidden('#map-view'), 'the map is hidden on the chip page');
  const rows = await page.$$eval('#chip-alerts tbody tr.alert', (els) => els.map((e) => ({
    kind: e.getAttribute('data-kind'), state: e.getAttribute('data-state'), text: e.textContent })));
  check(detail.alerts.length > 0, 'the smuggled chip has alerts (' + detail.alerts.length + ')');
  same(rows.map((r) => r.kind + '/' + r.state), detail.alerts.map((a) => a.kind + '/' + a.state),
    'the chip page lists its alerts');
  check(rows.some((r) => r.kind === 'site_excluded'), 'a site_excluded alert is on the chip page');
  same(await page.$$eval('#chip-history tbody tr', (els) => els.length), detail.history.length,
    'one history row per attestation');
  same(await page.$$eval('#chip-timeline-svg rect', (els) => els.length), detail.history.length,
    'one timeline segment per attestation');
  same(await page.$$eval('#chip-landmarks tbody tr[data-landmark]', (els) =>
    els.map((e) => e.getAttribute('data-landmark'))), detail.landmarks.map((l) => l.landmark),
  'per-landmark minimum RTT and bound rows');
  const chainState = await page.getAttribute('#chip-chain', 'data-state');
  same(chainState, detail.chain.first_bad ? 'broken' : 'ok', 'chain audit state');
  const chipShot = path.join(outDir, 'dashboard-chip.png');
  await page.screenshot({ path: chipShot, fullPage: true });
  console.log('screenshot: ' + chipShot);

  // ---- the hostile chips' pages -----------------------------------------------
  for (const c of [hostileSerial, hostileOperator]) {
    await page.evaluate((h) => { location.hash = h; }, '#/chip/' + encodeURIComponent(c.serial));
    await page.waitForFunction((s) => document.getElementById('chip-page').getAttribute('data-serial') === s
      && document.getElementById('chip-verdict') !== null, c.serial);
    same(await page.textContent('#chip-serial'), c.serial, 'chip page title is the serial, as text');
    const facts = await page.textContent('#chip-facts');
    check(facts.includes(c.operator), 'chip page shows operator ' + JSON.stringify(c.operator) + ' as text');
  }
  await page.evaluate(() => { location.hash = '#/'; });
  await page.waitForSelector('#map-view:not([hidden])');
  await page.waitForFunction((n) => document.querySelectorAll('.chip-marker').length === n, placed.length);

  // ---- it refreshes by itself (every --refresh-s, /api/summary's refresh_s) -------
  const refreshS = Number.isInteger(summary.refresh_s) ? summary.refresh_s : 30;
  const before = await page.textContent('#updated');
  check(before.includes('refreshes every ' + refreshS + ' s'), 'the page refreshes every ' +
    refreshS + ' s: ' + before);
  await page.waitForFunction((t) => document.getElementById('updated').textContent !== t &&
    document.getElementById('updated').getAttribute('data-state') === 'ok', before,
  { timeout: (refreshS + 10) * 1000 });
  check(true, 'the page updated itself: ' + await page.textContent('#updated'));

  // ---- nothing ran ----------------------------------------------------------------
  same(await page.evaluate(() => typeof window.__pwned), 'undefined', 'window.__pwned was never set');
  same(dialogs, [], 'no dialog opened');
  same(await page.evaluate(() => document.querySelectorAll('[onerror], [onload], [onclick]').length), 0,
    'no element has an event handler attribute');
  same(await page.evaluate(() => [...document.scripts].map((s) => s.getAttribute('src'))),
    ['leaflet/leaflet.js', 'app.js'], 'the only scripts are the page\'s own');
  same(await page.evaluate(() => document.images.length), 0, 'no <img> element');
  same(await page.evaluate(() => window.__csp), [], 'no Content-Security-Policy violation');
} catch (e) {
  check(false, 'browser session: ' + (e && e.stack ? e.stack : e));
} finally {
  same(problems, [], 'no console error, uncaught exception or failed request');
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(passes + ' passed, ' + failures + ' failed');
process.exit(failures ? 1 : 0);
