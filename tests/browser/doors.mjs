// The doors against the browser (issue 18, A-F1, A-F2, A-F7's vector), proven in Debian's chromium against the
// real hearth binary on 127.0.0.1 with a fresh data folder. Run through ./run, after walk.mjs.
//
// 1. Cross-site: an attacker page on another origin (host name evil.test, mapped by --host-resolver-rules to a
//    second loopback server on 127.0.0.2 that this script starts) tries what needs no preflight: a text/plain
//    form post and a no-cors fetch, for claim and then for sign-in, and a CORS fetch with application/json.
//    The server must stay unclaimed, and the owner must not be locked out by the guesses.
// 2. Rebinding: a page whose origin is a host name mapped to the Hearth server's address (rebind.test, as a
//    DNS-rebinding domain ends up) reads /api/v1/me, /library/sections and /web/ as same-origin requests.
//    It must get 421 and nothing useful.
// 3. The real page on the server's own origin still claims and signs in.
//
// Env: HEARTH_BIN (the binary).
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import net from 'node:net';
import assert from 'node:assert/strict';

const BIN = process.env.HEARTH_BIN;
assert.ok(BIN, 'HEARTH_BIN must be set (use tests/browser/run)');
const tmp = mkdtempSync(join(tmpdir(), 'hearth-doors-'));
const dataDir = join(tmp, 'data'), profile = join(tmp, 'chromium-profile');
mkdirSync(dataDir); mkdirSync(profile);

const freePort = host => new Promise(res => { const s = net.createServer(); s.listen(0, host, () => { const p = s.address().port; s.close(() => res(p)); }); });
const port = await freePort('127.0.0.1');
const base = `http://127.0.0.1:${port}`;
const step = m => console.log('--', m);

// The attacker's site: one page on 127.0.0.2 (a loopback address that is not Hearth's listen address). Its
// script is given the target and the action in the query string and writes what it saw into #report.
const ATTACK = `<!doctype html><meta charset="utf-8"><title>cute cats</title>
<iframe name="sink" id="sink"></iframe><pre id="report"></pre>
<script>
const q = new URLSearchParams(location.search);
const target = q.get('target'), path = q.get('path'), body = q.get('body');
const out = {};
(async () => {
  // A text/plain form: the body is "name=value", so the JSON goes around an '=' in it (the reviewer's trick).
  const cut = body.indexOf('=');
  const f = document.createElement('form');
  f.method = 'POST'; f.enctype = 'text/plain'; f.action = target + path; f.target = 'sink';
  const i = document.createElement('input'); i.name = body.slice(0, cut); i.value = body.slice(cut + 1);
  f.appendChild(i); document.body.appendChild(f);
  const posted = new Promise(r => document.getElementById('sink').addEventListener('load', r, { once: true }));
  f.submit();
  await Promise.race([posted, new Promise(r => setTimeout(r, 5000))]);
  out.form = 'sent';
  // A no-cors fetch: the answer is opaque, but the request goes out without a preflight.
  try { const r = await fetch(target + path, { method: 'POST', mode: 'no-cors', body }); out.nocors = r.type; }
  catch (e) { out.nocors = 'failed: ' + e.message; }
  // A CORS fetch with JSON needs a preflight, which Hearth never grants.
  try { const r = await fetch(target + path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body }); out.cors = 'answered ' + r.status + ' ' + await r.text(); }
  catch (e) { out.cors = 'failed'; }
  document.getElementById('report').textContent = JSON.stringify(out);
})();
</script>`;
const attacker = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
  res.end(ATTACK);
});
const evilPort = await new Promise(res => attacker.listen(0, '127.0.0.2', () => res(attacker.address().port)));

let server = null;
async function startServer() {
  server = spawn(BIN, ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, RUST_LOG: 'warn' } });
  for (let t = 0; t < 200; t++) {
    try { const r = await fetch(base + '/health'); if (r.ok) return; } catch (e) { /* not yet */ }
    await new Promise(r => setTimeout(r, 50));
  }
  throw new Error('hearth did not start');
}
const serverFacts = async () => (await fetch(base + '/api/v1/server', { headers: { Accept: 'application/json' } })).json();

let ctx;
try {
  await startServer();
  const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
    // evil.test is the attacker's site; rebind.test is a rebinding name that now resolves to the box.
    '--host-resolver-rules=MAP evil.test 127.0.0.2, MAP rebind.test 127.0.0.1'];
  ctx = await chromium.launchPersistentContext(profile, { executablePath: '/usr/bin/chromium', headless: true, args: FLAGS });
  const page = ctx.pages()[0] || await ctx.newPage();

  const attack = async (path, body) => {
    const url = `http://evil.test:${evilPort}/?` + new URLSearchParams({ target: base, path, body });
    await page.goto(url);
    await page.waitForFunction(() => document.getElementById('report').textContent !== '', null, { timeout: 20000 });
    return JSON.parse(await page.locator('#report').innerText());
  };

  step('cross-site claim: text/plain form, no-cors fetch, CORS fetch');
  const claim = JSON.stringify({ name: 'mallory', password: 'evil=pass-123', remote_access: true });
  const c = await attack('/api/v1/claim', claim);
  console.log('attacker page saw:', JSON.stringify(c));
  assert.equal(c.cors, 'failed', 'the CORS fetch must not be answered readably');
  let facts = await serverFacts();
  assert.equal(facts.claimed, false, 'a page on another site must not claim the server');

  step('the real page on the server\'s own origin claims it');
  await page.goto(base + '/web/');
  await page.locator('#claim').waitFor();
  await page.fill('#claim-name', 'Ada');
  await page.fill('#claim-password', 'hearth by the fire');
  await page.fill('#claim-password2', 'hearth by the fire');
  await page.click('#claim-submit');
  await page.waitForFunction(() => location.hash === '#libraries' && document.querySelector('#title')?.textContent === 'Libraries');
  facts = await serverFacts();
  assert.equal(facts.claimed, true);
  const ownerToken = await page.evaluate(() => sessionStorage.getItem('hearth.token'));
  assert.match(ownerToken, /^[0-9a-f]{64}$/);
  // Loopback may read libraries without a token: what the rebinding page would be after.
  let r = await fetch(base + '/api/v1/settings/network', { method: 'PUT', headers: { 'Content-Type': 'application/json', 'X-Plex-Token': ownerToken, Accept: 'application/json' }, body: JSON.stringify({ allowed_without_auth: ['127.0.0.1/32'] }) });
  assert.equal(r.status, 200, await r.text());

  step('cross-site sign-in: eight guesses from another site, then the owner signs in');
  for (let n = 0; n < 4; n++) await attack('/api/v1/sign-in', JSON.stringify({ name: 'Ada', password: 'guess=pass-' + n }));
  // The real page's own request (same origin, JSON), as its sign-in form sends it: not locked out.
  await page.goto(base + '/web/');
  const signIn = await page.evaluate(async () => {
    const r = await fetch('/api/v1/sign-in', { method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'X-Plex-Client-Identifier': 'doors-real-page' }, body: JSON.stringify({ name: 'Ada', password: 'hearth by the fire' }) });
    return { status: r.status, data: await r.json() };
  });
  assert.equal(signIn.status, 200, JSON.stringify(signIn.data));
  const token = signIn.data.token;

  step('a page reached through a rebinding name reads nothing');
  const rebound = await ctx.newPage();
  const first = await rebound.goto(`http://rebind.test:${port}/web/`);
  assert.equal(first.status(), 421, 'the setup page is not served under a foreign name');
  const got = await rebound.evaluate(async tok => {
    const read = async (path, headers = {}) => { try { const r = await fetch(path, { headers: { Accept: 'application/json', ...headers } }); return { status: r.status, text: await r.text() }; } catch (e) { return { status: 0, text: e.message }; } };
    return {
      me: await read('/api/v1/me', { 'X-Plex-Token': tok }),
      sections: await read('/library/sections'),
      web: await read('/web/'),
      claim: await fetch('/api/v1/claim', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"name":"m","password":"mallory-pass"}' }).then(r => r.status, () => 0),
    };
  }, token);
  console.log('rebinding page saw:', Object.fromEntries(Object.entries(got).map(([k, v]) => [k, v.status ?? v])));
  for (const k of ['me', 'sections', 'web']) {
    assert.equal(got[k].status, 421, k + ': ' + got[k].text);
    assert.doesNotMatch(got[k].text, /Ada|MediaContainer|Directory|<script/, k + ' leaked: ' + got[k].text);
  }
  assert.equal(got.claim, 421);
  await rebound.close();

  step('the real page still reads under its own origin');
  r = await page.evaluate(async () => (await fetch('/library/sections', { headers: { Accept: 'application/json' } })).status);
  assert.equal(r, 200);
  console.log('doors: ok (claim and sign-in from evil.test refused, rebind.test answered 421, the real page works)');
} finally {
  if (ctx) await ctx.close().catch(() => {});
  attacker.close();
  if (server && server.exitCode === null) server.kill('SIGTERM');
  rmSync(tmp, { recursive: true, force: true });
}
