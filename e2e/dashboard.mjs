// End-to-end test of the dashboard in headless Chromium against `ctrl22-bridge demo`:
// the page loads, the bays are listed, a mode change made on the page reaches the bay on
// the mesh (smaxcur 0 on /DEMESH/<dev>/control), and screenshots are taken (desktop and a
// 390 px phone) for a person to look at.
//
// node e2e/dashboard.mjs --bridge <ctrl22-bridge binary> --out <dir>
// Exits 0 on success, 1 with a message on failure. Run by bridge/tests/dashboard_browser.rs.

import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { chromium } from 'playwright-core';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, arg, i, all) => (arg.startsWith('--') ? [...pairs, [arg.slice(2), all[i + 1]]] : pairs), []),
);
const bridge = args.bridge;
const out = args.out || 'test-artifacts';
const chromiumPath = args.chromium || process.env.CHROMIUM || '/usr/bin/chromium';
const TOKEN = 'demo';
const children = [];

function fail(message) {
  console.error('FAIL: ' + message);
  process.exitCode = 1;
  throw new Error(message);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, timeoutMs, check) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(250);
  }
}

function start(cmd, argv, name) {
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  child.output = '';
  child.stdout.on('data', (d) => { child.output += d; });
  child.stderr.on('data', (d) => { child.output += d; });
  child.on('error', (e) => { child.output += `\n${name}: ${e.message}`; });
  return child;
}

async function main() {
  if (!bridge) fail('--bridge <path to ctrl22-bridge> is required');
  mkdirSync(out, { recursive: true });
  const started = Date.now();
  const httpPort = await freePort();
  const mqttPort = await freePort();
  const demo = start(bridge, ['demo', '--nodes', '6', '--speed', '10', '--http', `127.0.0.1:${httpPort}`,
    '--mqtt-listen', `127.0.0.1:${mqttPort}`], 'demo');
  const base = `http://127.0.0.1:${httpPort}`;
  await until('the demo to serve /healthz', 20000, async () => {
    if (demo.exitCode !== null) fail(`the demo exited ${demo.exitCode}: ${demo.output}`);
    try { return (await fetch(base + '/healthz')).ok; } catch { return false; }
  });

  // A bay that is charging, so that "off" must lower its setpoint to 0.
  const bay = await until('a charging bay', 30000, async () => {
    const bays = await (await fetch(base + '/api/v1/nodes')).json();
    return bays.find((b) => b.online && b.charging && b.allocated_a >= 6);
  });
  console.log(`bay ${bay.dev} charges at ${bay.allocated_a} A`);

  const control = [];
  const sub = start('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(mqttPort), '-t', `/DEMESH/${bay.dev}/control`], 'mosquitto_sub');
  sub.stdout.on('data', (d) => {
    for (const line of String(d).split('\n').filter(Boolean)) control.push({ at: Date.now(), line });
  });

  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    // Nothing but the bridge may be asked for: the dashboard works offline.
    const foreign = [];
    page.on('request', (r) => { if (!r.url().startsWith(base)) foreign.push(r.url()); });

    await page.goto(base + '/');
    await page.waitForSelector('#live.ok', { timeout: 10000 });
    await until('six bay rows', 15000, async () => (await page.locator('#bays tbody tr').count()) === 6);
    const row = page.locator(`#bays tr[data-dev="${bay.dev}"]`);
    if ((await row.locator('.dot.on').count()) !== 1) fail('the bay is not shown online');

    // The picture to look at: the site with a car charging.
    await sleep(1500);
    await page.screenshot({ path: path.join(out, 'dashboard.png'), fullPage: true });

    const clickedAt = Date.now();
    await row.locator('select.mode').selectOption('off');
    await page.waitForSelector('#token-dialog[open]', { timeout: 5000 });
    await page.screenshot({ path: path.join(out, 'dashboard-token.png') });
    await page.fill('#token-input', TOKEN);
    await page.click('#token-ok');
    await page.waitForSelector('#toast.show:not(.bad)', { timeout: 5000 });

    const lowered = await until('smaxcur 0 on the bay\'s control topic', 15000, async () => control.find((m) => {
      if (m.at < clickedAt) return false;
      try {
        const cmd = JSON.parse(m.line);
        return cmd.cmd === 'avrsetpar' && cmd.avrpar === 'smaxcur' && cmd.avrval === 0;
      } catch { return false; }
    }));
    console.log(`mesh: ${lowered.line} after ${lowered.at - clickedAt} ms`);
    const after = await (await fetch(`${base}/api/v1/nodes/${bay.dev}`)).json();
    if (after.mode !== 'off' || after.settings.mode !== 'off') fail(`the API shows mode ${after.mode}`);
    if ((await row.locator('select.mode').inputValue()) !== 'off') fail('the page does not show mode off');

    // The stream delivers a picture with the bay off within a second or two.
    await sleep(1500);
    await page.screenshot({ path: path.join(out, 'dashboard-off.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await sleep(800);
    await page.screenshot({ path: path.join(out, 'dashboard-phone.png') });
    await page.screenshot({ path: path.join(out, 'dashboard-phone-full.png'), fullPage: true });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 1) fail(`the page is ${overflow} px wider than a 390 px phone`);

    if (foreign.length) fail('requests outside the bridge: ' + foreign.join(', '));
    if (errors.length) fail('errors in the page: ' + errors.join('; '));
    console.log(`ok in ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${out}`);
  } finally {
    await browser.close();
  }
}

try {
  await main();
} catch (e) {
  if (!process.exitCode) console.error('FAIL: ' + (e && e.stack ? e.stack : e));
  process.exitCode = 1;
  for (const child of children) if (child.output && child.spawnfile !== 'mosquitto_sub') console.error(child.output.slice(-3000));
} finally {
  for (const child of children) child.kill('SIGTERM');
}
