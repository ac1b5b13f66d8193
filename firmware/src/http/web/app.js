// Hearth setup page. Plain JavaScript, no build step, nothing fetched from elsewhere.
// Every value shown comes from /api/v1/; the server enforces access, the page only follows it.
// The token lives in sessionStorage: it dies with the tab, so a shared family browser where someone picked a
// PIN-protected profile does not stay signed in as them; the client identifier lives in localStorage so that
// signing in again reuses this browser's device record instead of filling the device list.
'use strict';

const $ = (s, r = document) => r.querySelector(s);
const S = sessionStorage, L = localStorage;
let server = null, me = null, timers = [], seq = 0;

const clientId = L.getItem('hearth.client') || (() => {
  const b = new Uint8Array(8); crypto.getRandomValues(b);
  const id = Array.from(b, x => x.toString(16).padStart(2, '0')).join('');
  L.setItem('hearth.client', id); return id;
})();
const token = {
  get: () => S.getItem('hearth.token'),
  set: t => t ? S.setItem('hearth.token', t) : S.removeItem('hearth.token'),
};

// ---- elements ----
function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k in e && typeof v !== 'string') e[k] = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of kids.flat(9)) if (c != null && c !== false) e.append(c.nodeType ? c : String(c));
  return e;
}
const p = (t, cls) => h('p', { class: cls }, t);
const errEl = id => h('p', { class: 'err', id, role: 'alert' });
function busy(btn, on) { if (btn) btn.disabled = on; }

// ---- the API ----
class Lost extends Error {}
class Expired extends Error {}

async function api(method, path, body, opts = {}) {
  const headers = {
    Accept: 'application/json', 'X-Plex-Client-Identifier': clientId,
    'X-Plex-Product': 'Hearth Web', 'X-Plex-Device-Name': browserName(),
  };
  const t = token.get();
  if (t) headers['X-Plex-Token'] = t;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let r;
  try {
    r = await fetch('/api/v1/' + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  } catch (e) { throw new Lost('The connection to the server was lost.'); }
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  const msg = data && data.error ? data.error.message : (r.ok ? '' : 'The server answered ' + r.status + '.');
  if (r.status === 401 && t && !opts.wrongSecretIs401) throw new Expired(msg);
  if (r.status === 429) {
    const s = r.headers.get('Retry-After');
    return { ok: false, status: 429, data, msg: msg + (s ? ' Try again in ' + s + ' s.' : '') };
  }
  return { ok: r.ok, status: r.status, data, msg };
}

function browserName() {
  const u = navigator.userAgent;
  const b = /Firefox\//.test(u) ? 'Firefox' : /Edg\//.test(u) ? 'Edge' : /Chrom/.test(u) ? 'Chrome' : /Safari\//.test(u) ? 'Safari' : 'Browser';
  return b + ' on ' + (/Android/.test(u) ? 'Android' : /iPhone|iPad/.test(u) ? 'iOS' : /Mac OS/.test(u) ? 'macOS' : /Windows/.test(u) ? 'Windows' : 'Linux');
}

// Load something a screen needs; a 404 means the server does not have this API yet.
async function need(path) {
  const r = await api('GET', path);
  if (r.status === 404) return { missing: true };
  if (!r.ok) throw new Error(r.msg);
  return r.data;
}
const notYet = what => h('div', { class: 'box na', 'data-na': what }, p(what + ' is not available on this server yet.'), p('This firmware does not have that part yet; the page shows it once the server answers it.', 'hint'));

// ---- drafts: what was typed survives a lost connection or an expired token ----
function saveDrafts() {
  const vals = {};
  for (const e of document.querySelectorAll('main input[id], main textarea[id], main select[id]')) {
    if (e.type === 'password' || e.dataset.secret) continue;
    vals[e.id] = e.type === 'checkbox' ? e.checked : e.value;
  }
  S.setItem('hearth.drafts', JSON.stringify({ hash: location.hash, vals }));
}
function restoreDrafts() {
  const d = JSON.parse(S.getItem('hearth.drafts') || 'null');
  if (!d || d.hash !== location.hash) return;
  let n = 0;
  for (const [id, v] of Object.entries(d.vals)) {
    const e = document.getElementById(id);
    if (!e || e.disabled) continue;
    if (e.type === 'checkbox') e.checked = v; else e.value = v;
    n++;
  }
  // Kept until the screen they belong to is back (the sign-in screen in between has none of these fields).
  if (n) S.removeItem('hearth.drafts');
}

// ---- forms ----
// f: {id, label, type, value, required, min, max, minlength, maxlength, pattern, hint, options, rows, check, disabled}
function field(f) {
  const type = f.type || 'text';
  const hintId = f.hint ? f.id + '-hint' : null, errId = f.id + '-err';
  const common = { id: f.id, name: f.id, required: f.required, disabled: f.disabled, 'aria-describedby': [hintId, errId].filter(Boolean).join(' ') };
  let input;
  if (type === 'select') {
    input = h('select', common, f.options.map(([v, t]) => h('option', { value: v, selected: String(v) === String(f.value) }, t)));
  } else if (type === 'textarea') {
    input = h('textarea', { ...common, rows: f.rows || 3, placeholder: f.placeholder, spellcheck: 'false' });
    input.value = f.value || '';
  } else {
    input = h('input', { ...common, type, min: f.min, max: f.max, step: f.step, minlength: f.minlength, maxlength: f.maxlength, pattern: f.pattern,
      inputmode: f.inputmode, autocomplete: f.autocomplete || 'off', placeholder: f.placeholder });
    if (type === 'checkbox') input.checked = !!f.value; else if (f.value != null) input.value = f.value;
  }
  if (f.secret) input.dataset.secret = '1';
  input._check = f.check;
  const label = h('label', { for: f.id }, f.label);
  const hint = f.hint ? h('p', { class: 'hint', id: hintId }, f.hint) : null;
  return type === 'checkbox'
    ? h('div', { class: 'field check' }, input, label, hint, errEl(errId))
    : h('div', { class: 'field' }, label, input, hint, errEl(errId));
}
function setErr(input, msg) {
  const e = document.getElementById(input.id + '-err');
  if (e) e.textContent = msg || '';
  input.setAttribute('aria-invalid', msg ? 'true' : 'false');
}
function validate(form) {
  let first = null;
  for (const i of form.querySelectorAll('input,select,textarea')) {
    if (!i.id || i.disabled) continue;
    let msg = i.checkValidity() ? '' : i.validationMessage;
    if (!msg && i._check) msg = i._check(i.type === 'checkbox' ? i.checked : i.value, form) || '';
    setErr(i, msg);
    if (msg && !first) first = i;
  }
  if (first) first.focus();
  return !first;
}
const val = (form, id) => { const e = form.querySelector('#' + id); return e.type === 'checkbox' ? e.checked : e.value; };

// A form whose submit button has its own error line: the API's refusal is shown there, next to what caused it.
function form(id, fields, submit, onSubmit, extra) {
  const btn = h('button', { type: 'submit', id: id + '-submit' }, submit);
  const err = errEl(id + '-error');
  const f = h('form', { id, novalidate: true }, fields.map(x => x.nodeType ? x : field(x)), extra, h('div', { class: 'row' }, btn), err);
  f.addEventListener('submit', async ev => {
    ev.preventDefault();
    err.textContent = '';
    if (!validate(f)) return;
    busy(btn, true);
    try { const m = await onSubmit(f); if (m) err.textContent = m; }
    catch (e) { if (!handleFatal(e)) err.textContent = e.message; }
    finally { busy(btn, false); }
  });
  return f;
}

// A button doing one thing; its refusal appears right after it.
function action(label, run, cls) {
  const err = h('span', { class: 'err', role: 'alert' });
  const b = h('button', { type: 'button', class: cls, onclick: async () => {
    err.textContent = ''; busy(b, true);
    try { const m = await run(b); if (m) err.textContent = m; }
    catch (e) { if (!handleFatal(e)) err.textContent = e.message; }
    finally { if (b.isConnected) busy(b, false); }
  } }, label);
  return h('span', { class: 'row' }, b, err);
}

// ---- checks ----
const bytes = s => new TextEncoder().encode(s).length;
const V4 = /^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
function isV6(a) { if (!a.includes(':')) return false; try { new URL('http://[' + a + ']/'); return true; } catch (e) { return false; } }
function netProblem(s) {
  const [a, pre, more] = s.split('/');
  if (more !== undefined) return s + ' is not a network: write 192.168.1.0/24 or one address.';
  const v6 = isV6(a);
  if (!v6 && !V4.test(a)) return s + ' is not an IPv4 or IPv6 address.';
  if (pre !== undefined && !(/^\d{1,3}$/.test(pre) && +pre <= (v6 ? 128 : 32))) return s + ': the prefix after / must be 0 to ' + (v6 ? 128 : 32) + '.';
  return '';
}
const lines = s => s.split(/[\n,]/).map(x => x.trim()).filter(Boolean);
const netsCheck = max => v => { const l = lines(v); if (l.length > max) return 'At most ' + max + ' entries.'; for (const n of l) { const m = netProblem(n); if (m) return m; } return ''; };
const hostsCheck = max => v => { const l = lines(v); if (l.length > max) return 'At most ' + max + ' names.';
  for (const n of l) if (!/^(\[[0-9a-fA-F:.]+\]|[0-9a-fA-F:.]*:[0-9a-fA-F:.]*|([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*\.?)$/.test(n)) return n + ' is not a host name like home.example.net or an address.';
  return ''; };
const nameCheck = v => !v.trim() ? 'Enter a name.' : bytes(v.trim()) > 32 ? 'A name is at most 32 bytes.' : '';
const pinCheck = (opt) => v => (!v && opt) ? '' : /^\d{4,8}$/.test(v) ? '' : 'A PIN is 4 to 8 digits.';
const pwCheck = (nameId) => (v, f) => v.length < 8 ? 'At least 8 characters.' : bytes(v) > 128 ? 'At most 128 bytes.'
  : nameId && f.querySelector('#' + nameId) && v.toLowerCase() === val(f, nameId).trim().toLowerCase() ? 'The password must not be the name.'
  : /^(.)\1*$/.test(v) ? 'Not one repeated character.' : '';

// ---- formatting ----
const when = t => t ? new Date(t * 1000).toLocaleString() : 'never';
function dur(s) {
  s = Math.floor(s); const d = Math.floor(s / 86400), hh = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  return d ? d + ' d ' + hh + ' h' : hh ? hh + ' h ' + m + ' min' : m ? m + ' min ' + (s % 60) + ' s' : s + ' s';
}
function rate(bps) { const u = ['B/s', 'KB/s', 'MB/s', 'GB/s']; let i = 0; while (bps >= 1000 && i < 3) { bps /= 1000; i++; } return (i ? bps.toFixed(1) : Math.round(bps)) + ' ' + u[i]; }
const facts = pairs => h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));

// ---- screens ----
function later(fn, ms) { const t = setInterval(fn, ms); timers.push(t); }
function show(title, ...nodes) {
  const main = $('#main');
  main.replaceChildren(h('h2', { id: 'title', tabindex: '-1' }, title), ...nodes.flat(9).filter(n => n != null && n !== false));
  document.title = title + ' \u2014 Hearth';
  restoreDrafts();
  if (document.activeElement === document.body || !main.contains(document.activeElement)) $('#title').focus({ preventScroll: true });
}
function banner(t) { const b = $('#banner'); b.textContent = t || ''; b.hidden = !t; }

// Called with an error from any screen: expired token and lost connection go to sign-in, keeping drafts.
function handleFatal(e) {
  if (e instanceof Expired) { saveDrafts(); S.setItem('hearth.back', location.hash); token.set(null); me = null; chrome(); signIn(e.message); return true; }
  if (e instanceof Lost) { saveDrafts(); S.setItem('hearth.back', location.hash); chrome(); signIn(e.message + ' What you typed is kept; sign in again when the server is back.', true); return true; }
  return false;
}

function chrome() {
  $('#server-name').textContent = (server && server.name) || 'Hearth';
  const owner = me && me.role === 'owner';
  $('#nav').hidden = !owner;
  $('#wnav').hidden = !me;
  $('#who').textContent = me ? 'Signed in as ' + me.name + ' (' + me.role + ')' : '';
  $('#signout').hidden = !me;
  $('#switch').hidden = !me || me.role === 'friend';
  for (const a of document.querySelectorAll('nav a, #wnav a')) a.getAttribute('href') === location.hash.split('/')[0] ? a.setAttribute('aria-current', 'page') : a.removeAttribute('aria-current');
}

const screens = { libraries, home, devices, network, dlna, remote, system, profiles, me: mine };

async function route() {
  timers.forEach(clearInterval); timers = [];
  const mine = ++seq;
  banner(server && server.recovered_from_damage ? 'The flash store had no valid record at start: Hearth is running on defaults. See System.'
    : server && server.safe_mode && me && me.role === 'owner' ? 'Safe mode: the watchdog had to restart this box several times in a short while, so remote access and DLNA are off. See System for why, and to turn them back on.' : '');
  if (!server || !server.claimed) return claim();
  if (!me) return signIn();
  let name = location.hash.slice(1).split('/')[0];
  if (me.role !== 'owner' && !['me', 'profiles', 'watch'].includes(name)) name = 'watch';
  if (!screens[name]) name = me.role === 'owner' ? 'libraries' : 'me';
  if (location.hash.slice(1).split('/')[0] !== name) { history.replaceState(null, '', '#' + name); }
  chrome();
  delete $('#main').dataset.screen;
  try { await screens[name](() => mine === seq); if (mine === seq) $('#main').dataset.screen = name; }
  catch (e) { if (!handleFatal(e)) show('Something went wrong', p(e.message, 'err')); }
}

async function boot() {
  try {
    const r = await api('GET', 'server');
    server = r.data;
    me = null;
    if (server.claimed && token.get()) {
      const m = await api('GET', 'me');
      if (m.ok) me = m.data;
    }
  } catch (e) {
    if (e instanceof Expired) { token.set(null); me = null; }
    else { show('Cannot reach the server', p(e.message, 'err'), action('Try again', boot)); return; }
  }
  const back = S.getItem('hearth.back');
  if (me && back) { S.removeItem('hearth.back'); history.replaceState(null, '', back); }
  route();
}

// ---- first run: claim ----
async function claim() {
  chrome();
  if (server.your_origin !== 'lan') {
    // Ask the server itself: the access rule refuses a claim from outside the LAN before reading any body.
    const r = await api('POST', 'claim', {});
    return show('Set up this server', h('div', { class: 'box', id: 'claim-refused' },
      p('This server is not set up yet, and it can only be set up from its own local network.'),
      p(r.msg || 'The server refused.', 'err'),
      p('Open this page from a computer or phone on the same network as the server (for example http://<server address>:32400/web/).', 'hint')));
  }
  show('Set up this server',
    p('Create the owner account. You will use it to sign in to this page and to your apps.'),
    form('claim', [
      { id: 'claim-name', label: 'Your name', required: true, maxlength: 32, autocomplete: 'username', check: nameCheck },
      { id: 'claim-password', label: 'Password', type: 'password', required: true, autocomplete: 'new-password', hint: 'At least 8 characters; not your name; not a common password.', check: pwCheck('claim-name') },
      { id: 'claim-password2', label: 'Password again', type: 'password', required: true, autocomplete: 'new-password', check: (v, f) => v === val(f, 'claim-password') ? '' : 'The two passwords differ.' },
      { id: 'claim-remote', label: 'Set up remote access for me', type: 'checkbox', value: true, hint: 'Unless you untick this, Hearth asks your router to forward a port to it (UPnP, NAT-PMP or PCP), so people you share with can reach your libraries over the internet. You can change this later under Remote access.' },
    ], 'Claim this server', async f => {
      const r = await api('POST', 'claim', { name: val(f, 'claim-name').trim(), password: val(f, 'claim-password'), remote_access: val(f, 'claim-remote') });
      if (!r.ok) return r.msg;
      token.set(r.data.token);
      history.replaceState(null, '', '#libraries');
      await boot();
    }));
}

// ---- sign in ----
function signIn(notice, reconnect) {
  timers.forEach(clearInterval); timers = [];
  chrome();
  show('Sign in',
    notice ? p(notice, 'box warn') : null,
    reconnect && token.get() ? action('Reconnect', boot, 'quiet') : null,
    form('signin', [
      { id: 'signin-name', label: 'Name', required: true, autocomplete: 'username', check: nameCheck },
      { id: 'signin-password', label: 'Password', type: 'password', required: true, autocomplete: 'current-password' },
    ], 'Sign in', async f => {
      const r = await api('POST', 'sign-in', { name: val(f, 'signin-name').trim(), password: val(f, 'signin-password') }, { wrongSecretIs401: true });
      if (!r.ok) return r.msg;
      token.set(r.data.token);
      await boot();
    }),
    p('Home members have no password: someone in your Home signs in here, then picks your profile with "Switch profile".', 'hint'));
}

// ---- Home profile picker with a PIN pad ----
async function profiles() {
  const r = await api('GET', 'home/users');
  if (!r.ok) throw new Error(r.msg);
  const list = h('ul', { class: 'profiles' }, r.data.users.map(u => h('li', null,
    h('button', { type: 'button', class: 'profile', 'data-id': u.id, 'aria-label': u.name + (u.has_pin ? ', PIN protected' : ''), onclick: () => pick(u) },
      h('span', { class: 'avatar', 'aria-hidden': 'true' }, u.name.slice(0, 1).toUpperCase()), u.name, u.has_pin ? h('span', { class: 'mut' }, 'PIN') : null))));
  const slot = h('div', { id: 'pin-slot' });
  show('Who is watching?', list, slot);
  function pick(u) {
    if (!u.has_pin) return go(u, null);
    const input = h('input', { id: 'pin', type: 'password', inputmode: 'numeric', autocomplete: 'off', maxlength: 8, pattern: '\\d{4,8}', 'aria-describedby': 'pin-err', 'data-secret': '1' });
    const err = errEl('pin-err');
    const key = d => h('button', { type: 'button', class: 'quiet', onclick: () => { if (input.value.length < 8) input.value += d; input.focus(); } }, d);
    const ok = h('button', { type: 'submit' }, 'OK');
    const f = h('form', { id: 'pin-form', novalidate: true },
      h('h3', null, 'PIN for ' + u.name),
      h('div', { class: 'field' }, h('label', { for: 'pin' }, 'PIN (4 to 8 digits)'), input), err,
      h('div', { class: 'pad', role: 'group', 'aria-label': 'PIN pad' },
        ['1', '2', '3', '4', '5', '6', '7', '8', '9'].map(key),
        h('button', { type: 'button', class: 'quiet', 'aria-label': 'Delete last digit', onclick: () => { input.value = input.value.slice(0, -1); input.focus(); } }, '\u232B'),
        key('0'), ok));
    f.addEventListener('submit', async ev => {
      ev.preventDefault();
      if (!/^\d{4,8}$/.test(input.value)) { err.textContent = 'A PIN is 4 to 8 digits.'; input.focus(); return; }
      busy(ok, true);
      try { const m = await go(u, input.value); if (m) { err.textContent = m; input.value = ''; input.focus(); } }
      catch (e) { if (!handleFatal(e)) err.textContent = e.message; }
      finally { busy(ok, false); }
    });
    slot.replaceChildren(f);
    input.focus();
  }
  async function go(u, pin) {
    const r = await api('POST', 'home/switch', pin == null ? { id: u.id } : { id: u.id, pin }, { wrongSecretIs401: true });
    if (!r.ok) { if (!pin) slot.replaceChildren(p(r.msg, 'err')); return r.msg; }
    token.set(r.data.token);
    history.replaceState(null, '', '#' + (r.data.account.role === 'owner' ? 'libraries' : 'watch'));
    await boot();
  }
}

// ---- your own account (every role) ----
function accountForms(acct) {
  const out = [h('h3', null, 'Your PIN'), p(acct.has_pin ? 'Your profile has a PIN.' : 'Your profile has no PIN. Any PIN secures the server: every app and device then needs a token, and DLNA turns off.', 'hint'),
    form('mypin', [
      { id: 'mypin-new', label: acct.has_pin ? 'New PIN (empty removes it)' : 'New PIN', type: 'password', inputmode: 'numeric', maxlength: 8, check: pinCheck(acct.has_pin), secret: true },
      acct.has_password ? { id: 'mypin-password', label: 'Your password', type: 'password', required: true, autocomplete: 'current-password' }
        : { id: 'mypin-current', label: 'Your current PIN', type: 'password', inputmode: 'numeric', required: acct.has_pin, check: pinCheck(!acct.has_pin), secret: true },
    ], 'Save PIN', async f => {
      const b = { pin: val(f, 'mypin-new') || null };
      if (acct.has_password) b.current_password = val(f, 'mypin-password'); else if (acct.has_pin) b.current_pin = val(f, 'mypin-current');
      const r = await api('PUT', 'me/pin', b, { wrongSecretIs401: true });
      if (!r.ok) return r.msg;
      await refreshMe(); route();
    })];
  if (acct.has_password) out.push(h('h3', null, 'Your password'), form('mypw', [
    { id: 'mypw-current', label: 'Current password', type: 'password', required: true, autocomplete: 'current-password' },
    { id: 'mypw-new', label: 'New password', type: 'password', required: true, autocomplete: 'new-password', check: pwCheck(null) },
  ], 'Change password', async f => {
    const r = await api('POST', 'me/password', { current: val(f, 'mypw-current'), new: val(f, 'mypw-new') }, { wrongSecretIs401: true });
    if (!r.ok) return r.msg;
    f.reset(); f.append(p('Password changed; ' + r.data.signed_out_devices + ' other device(s) signed out.', 'ok'));
  }));
  return out;
}
async function refreshMe() { const r = await api('GET', 'me'); if (r.ok) me = r.data; chrome(); }
async function mine() {
  await refreshMe();
  show('Your account', facts([['Name', me.name], ['Role', me.role], ['Libraries shared with you', me.shares.length ? me.shares.join(', ') : 'none']]), accountForms(me));
}

// ---- libraries ----
const KINDS = [['movies', 'Movies'], ['shows', 'TV shows'], ['music', 'Music'], ['photos', 'Photos'], ['other_videos', 'Other videos']];
const folderCheck = v => !v.startsWith('/') ? 'Write the full path of a folder on the server, starting with /.' : bytes(v) > 112 ? 'A path is at most 112 bytes.' : '';
function progressText(pr) {
  if (!pr) return '';
  if (pr.running) return 'Scanning: ' + pr.files_seen + ' files seen' + (pr.files_per_second ? ', ' + pr.files_per_second.toFixed(0) + ' files/s' : '') + (pr.estimate_seconds ? ', about ' + dur(pr.estimate_seconds) + ' left' : '');
  const probs = pr.problems && pr.problems.length ? ' Problems: ' + pr.problems.join('; ') : '';
  return (pr.scans ? 'Scan finished: ' + pr.files_seen + ' files in ' + (pr.last_scan_ms / 1000).toFixed(1) + ' s.' : 'Not scanned yet.') + probs;
}
// The folder picker (GET folders, owner only): click a folder to go in, "Use this folder" fills the field `id`.
function picker(id) {
  const box = h('div', { class: 'box picker', id: id + '-pick', hidden: true });
  const go = (label, path, cls) => h('li', null, h('button', { type: 'button', class: cls || 'quiet', 'data-path': path, onclick: () => open(path) }, label));
  async function open(path) {
    const r = await api('GET', 'folders' + (path ? '?path=' + encodeURIComponent(path) : ''));
    const d = r.ok ? r.data : {};
    box.replaceChildren(...[
      r.ok ? p(d.path ? 'In ' + d.path : 'Media disks first, then the whole server.', 'hint') : p(r.msg, 'err'),
      h('ul', null, d.parent ? go('\u2191 Up to ' + d.parent, d.parent) : path ? go('All places', '') : null,
        (d.folders || []).map(f => go((f.media ? '\u{1F5B4} ' : '') + f.name + (f.link ? ' \u2192 ' + f.path : ''), f.path))),
      d.folders && !d.folders.length && p('No folders inside.', 'mut'),
      d.truncated && p('Only the first ' + d.folders.length + ' folders are listed.', 'hint'),
      h('div', { class: 'row' }, d.path ? h('button', { type: 'button', id: id + '-use', onclick: () => { const i = $('#' + id); i.value = d.path; setErr(i, ''); box.hidden = true; } }, 'Use this folder') : null,
        h('button', { type: 'button', class: 'quiet', onclick: () => { box.hidden = true; } }, 'Close'))].filter(Boolean));
  }
  return h('div', null, h('button', { type: 'button', class: 'quiet', id: id + '-browse', onclick: () => {
    box.hidden = false; const v = $('#' + id).value.trim(); open(v.startsWith('/') ? v : '').catch(handleFatal);
  } }, 'Browse\u2026'), box);
}
async function libraries(live) {
  const d = await need('libraries');
  if (d.missing) return show('Libraries', notYet('Libraries'));
  const ids = libs => libs.map(l => l.id).join(',');
  let shown = ids(d.libraries);
  const list = h('div', { id: 'libs' });
  // Files whose headers took Hearth down (GET libraries `skipped`): kept out of every library until they change.
  const skipped = h('div', { id: 'skipped' });
  const drawSkipped = files => skipped.replaceChildren(...(files && files.length ? [
    p('Files Hearth could not read, skipped: reading their headers stopped Hearth, so they are left out until they change (replace or re-save a file to have it read again).', 'hint'),
    h('ul', null, files.map(f => h('li', null, h('code', null, f))))] : []));
  function draw(libs) {
    list.replaceChildren(...(libs.length ? libs.map(l => h('section', { class: 'card', 'data-lib': l.id, 'aria-labelledby': 'lib-' + l.id },
      h('h3', { id: 'lib-' + l.id }, l.name + ' '), p((KINDS.find(k => k[0] === l.kind) || [0, l.kind])[1] + ' \u00b7 ', 'mut'),
      h('p', { class: 'progress', role: 'status' }, progressText(l.progress)),
      h('ul', null, l.folders.map(path => h('li', null, h('span', { class: 'row' }, h('code', null, path),
        action('Remove folder', async () => { const r = await api('DELETE', 'libraries/' + l.id + '/folders', { path }); if (!r.ok) return r.msg; reload(); }, 'quiet'))))),
      form('addf-' + l.id, [{ id: 'addf-' + l.id + '-path', label: 'Add a folder to ' + l.name, placeholder: '/srv/media/films', required: true, check: folderCheck },
        picker('addf-' + l.id + '-path')], 'Add folder', async f => {
        const r = await api('POST', 'libraries/' + l.id + '/folders', { path: val(f, 'addf-' + l.id + '-path').trim() });
        if (!r.ok) return r.msg; reload();
      }),
      h('div', { class: 'row' },
        action('Refresh', async () => { const r = await api('POST', 'libraries/' + l.id + '/refresh'); if (!r.ok) return r.msg; poll(); }),
        action('Delete library', async b => {
          if (b.dataset.sure !== '1') { b.dataset.sure = '1'; b.textContent = 'Really delete ' + l.name + '?'; return; }
          const r = await api('DELETE', 'libraries/' + l.id); if (!r.ok) return r.msg; reload();
        }, 'danger'))))
      : [p('No libraries yet. Add one below: give it a name, a kind and a folder on the server.', 'mut')]));
    for (const l of libs) { const c = list.querySelector('[data-lib="' + l.id + '"] .mut'); c.append(l.items + ' items'); }
  }
  async function reload() { const r = await need('libraries'); shown = ids(r.libraries); draw(r.libraries); drawSkipped(r.skipped); }
  async function poll() {
    if (!live()) return;
    const r = await api('GET', 'libraries');
    if (!r.ok || !live()) return;
    if (ids(r.data.libraries) !== shown) return reload();
    drawSkipped(r.data.skipped);
    for (const l of r.data.libraries) {
      const c = list.querySelector('[data-lib="' + l.id + '"]');
      c.querySelector('.progress').textContent = progressText(l.progress);
      c.querySelector('.mut').textContent = (KINDS.find(k => k[0] === l.kind) || [0, l.kind])[1] + ' \u00b7 ' + l.items + ' items';
    }
  }
  draw(d.libraries);
  drawSkipped(d.skipped);
  show('Libraries', list, skipped, h('h3', null, 'Add a library'), form('newlib', [
    { id: 'newlib-name', label: 'Name', required: true, check: nameCheck },
    { id: 'newlib-kind', label: 'Kind', type: 'select', options: KINDS },
    { id: 'newlib-folder', label: 'Folder on the server', placeholder: '/srv/media/films', required: true, check: folderCheck },
    picker('newlib-folder'),
  ], 'Add library', async f => {
    const r = await api('POST', 'libraries', { name: val(f, 'newlib-name').trim(), kind: val(f, 'newlib-kind'), folders: [val(f, 'newlib-folder').trim()] });
    if (!r.ok) return r.msg; f.reset(); reload();
  }));
  later(() => poll().catch(handleFatal), 1000);
}

// ---- Home and friends ----
function shareBoxes(prefix, libs, chosen) {
  if (!libs) return p('Libraries are not available on this server yet, so nothing can be shared.', 'hint');
  if (!libs.length) return p('There are no libraries to share yet.', 'hint');
  return h('fieldset', null, h('legend', null, 'Libraries they may see'),
    libs.map(l => field({ id: prefix + '-lib-' + l.id, label: l.name, type: 'checkbox', value: chosen.includes(l.id) })));
}
const sharesOf = (f, prefix, libs) => (libs || []).filter(l => val(f, prefix + '-lib-' + l.id)).map(l => l.id);

async function home() {
  const [mem, fr, lib] = await Promise.all([need('members'), need('friends'), need('libraries')]);
  const libs = lib.missing ? null : lib.libraries;
  await refreshMe();
  const secured = me.server_secured;
  const person = (a, kind) => h('section', { class: 'card', 'data-account': a.id },
    h('h3', null, a.name), p(a.has_pin ? 'Has a PIN.' : 'No PIN.', 'mut'),
    form('edit-' + a.id, [
      { id: 'edit-' + a.id + '-pin', label: a.has_pin ? 'New PIN (leave empty to keep)' : 'Set a PIN', type: 'password', inputmode: 'numeric', maxlength: 8, check: pinCheck(true), secret: true },
      kind === 'friends' ? { id: 'edit-' + a.id + '-pw', label: 'New password (leave empty to keep)', type: 'password', autocomplete: 'new-password', check: (v, f) => v ? pwCheck(null)(v, f) : '' } : null,
      shareBoxes('edit-' + a.id, libs, a.shares),
    ].filter(Boolean), 'Save ' + a.name, async f => {
      const b = {};
      const pin = val(f, 'edit-' + a.id + '-pin'); if (pin) b.pin = pin;
      if (kind === 'friends' && val(f, 'edit-' + a.id + '-pw')) b.password = val(f, 'edit-' + a.id + '-pw');
      if (libs) b.shares = sharesOf(f, 'edit-' + a.id, libs);
      const r = await api('PATCH', kind + '/' + a.id, b); if (!r.ok) return r.msg; route();
    }),
    h('div', { class: 'row' },
      a.has_pin ? action('Remove PIN', async () => { const r = await api('PATCH', kind + '/' + a.id, { pin: null }); if (!r.ok) return r.msg; route(); }, 'quiet') : null,
      action('Remove ' + a.name, async b => {
        if (b.dataset.sure !== '1') { b.dataset.sure = '1'; b.textContent = 'Really remove ' + a.name + '?'; return; }
        const r = await api('DELETE', kind + '/' + a.id); if (!r.ok) return r.msg; route();
      }, 'danger')));
  show('Home & friends',
    h('p', { class: 'box', id: 'secured' }, secured ? 'This server is secured: every app and device needs a token, and "networks allowed without auth" are ignored.'
      : 'This server is not secured yet. Adding a Home member or any PIN secures it: every request then needs a token, and DLNA turns off.'),
    h('h3', null, 'Home members'),
    mem.accounts.length ? mem.accounts.map(a => person(a, 'members')) : p('No Home members yet.', 'mut'),
    form('addm', [
      { id: 'addm-name', label: 'New member\u2019s name', required: true, check: nameCheck },
      { id: 'addm-pin', label: 'PIN (optional, 4 to 8 digits)', type: 'password', inputmode: 'numeric', maxlength: 8, check: pinCheck(true), secret: true },
      shareBoxes('addm', libs, []),
    ], 'Add member', async f => {
      const b = { name: val(f, 'addm-name').trim() };
      if (val(f, 'addm-pin')) b.pin = val(f, 'addm-pin');
      if (libs) b.shares = sharesOf(f, 'addm', libs);
      const r = await api('POST', 'members', b); if (!r.ok) return r.msg; route();
    }),
    h('h3', null, 'Friends'),
    p('Friends sign in with their own name and password, from anywhere, and see only the libraries you share with them.', 'hint'),
    fr.accounts.length ? fr.accounts.map(a => person(a, 'friends')) : p('No friends yet.', 'mut'),
    form('addfr', [
      { id: 'addfr-name', label: 'Friend\u2019s name', required: true, check: nameCheck },
      { id: 'addfr-password', label: 'Their password', type: 'password', required: true, autocomplete: 'new-password', check: pwCheck('addfr-name') },
      shareBoxes('addfr', libs, []),
    ], 'Add friend', async f => {
      const b = { name: val(f, 'addfr-name').trim(), password: val(f, 'addfr-password') };
      if (libs) b.shares = sharesOf(f, 'addfr', libs);
      const r = await api('POST', 'friends', b); if (!r.ok) return r.msg; route();
    }),
    h('h3', null, 'Your account'), accountForms(me));
}

// ---- devices and API tokens ----
async function devices() {
  const [dv, tk] = await Promise.all([need('devices'), need('tokens')]);
  const tokenOut = h('div', { id: 'new-token', 'aria-live': 'polite' });
  show('Devices & tokens',
    h('h3', null, 'Signed-in devices'),
    p('Revoking a device signs it out at once; it must sign in again.', 'hint'),
    h('table', null, h('thead', null, h('tr', null, ['Device', 'Account', 'App', 'Last seen', ''].map(t => h('th', null, t)))),
      h('tbody', null, dv.devices.map(d => h('tr', { 'data-device': d.id },
        h('td', null, form('dev-' + d.id, [{ id: 'dev-' + d.id + '-name', label: 'Name' + (d.this_device ? ' (this browser)' : ''), value: d.name, required: true, check: v => bytes(v.trim()) > 24 ? 'At most 24 bytes.' : '' }], 'Rename', async f => {
          const r = await api('PATCH', 'devices/' + d.id, { name: val(f, 'dev-' + d.id + '-name').trim() }); if (!r.ok) return r.msg; route();
        })),
        h('td', null, d.account_name), h('td', null, d.product), h('td', null, when(d.last_seen)),
        h('td', null, action('Revoke', async () => { const r = await api('DELETE', 'devices/' + d.id); if (!r.ok) return r.msg; route(); }, 'danger')))))),
    h('h3', null, 'API tokens for tools'),
    p('A token lets a script or tool (a library-refresh hook, python-plexapi) use this server without a password.', 'hint'),
    tk.tokens.length ? h('table', null, h('thead', null, h('tr', null, ['Name', 'Scope', 'Created', ''].map(t => h('th', null, t)))),
      h('tbody', null, tk.tokens.map(t => h('tr', { 'data-token': t.id }, h('td', null, t.name), h('td', null, t.scope), h('td', null, when(t.created)),
        h('td', null, action('Revoke', async () => { const r = await api('DELETE', 'tokens/' + t.id); if (!r.ok) return r.msg; route(); }, 'danger'))))))
      : p('No API tokens.', 'mut'),
    form('newtok', [
      { id: 'newtok-name', label: 'Token name', required: true, check: nameCheck, placeholder: 'sonarr refresh hook' },
      { id: 'newtok-scope', label: 'What it may do', type: 'select', options: [['read_library', 'Read libraries'], ['refresh_library', 'Read and refresh libraries'], ['admin', 'Everything the owner can do']] },
    ], 'Create token', async f => {
      const r = await api('POST', 'tokens', { name: val(f, 'newtok-name').trim(), scope: val(f, 'newtok-scope') });
      if (!r.ok) return r.msg;
      f.reset();
      const out = h('input', { id: 'token-value', readonly: true, class: 'token', value: r.data.token, 'data-secret': '1' });
      tokenOut.replaceChildren(h('div', { class: 'warnbox' }, h('label', { for: 'token-value' }, 'Token for ' + r.data.name + ' \u2014 copy it now; it is shown only once'), out,
        action('Copy', async () => { out.select(); try { await navigator.clipboard.writeText(out.value); } catch (e) { document.execCommand('copy'); } return ''; }, 'quiet')));
      out.focus(); out.select();
    }), tokenOut);
}

// ---- network ----
async function network() {
  const [n, tls] = await Promise.all([need('settings/network'), need('settings/tls')]);
  const ignored = n.allowed_without_auth_ignored;
  const f = form('net', [
    { id: 'net-lan', label: 'LAN networks', type: 'textarea', value: n.lan_networks.join('\n'), placeholder: n.own_subnets.join('\n'), check: netsCheck(8),
      hint: 'One network per line (192.168.1.0/24, fd00::/8, or one address). Empty: this server\u2019s own subnets' + (n.own_subnets.length ? ' (' + n.own_subnets.join(', ') + ')' : '') + '. Traffic from here is LAN: not capped, and the only place setup and DLNA answer.' },
    h('fieldset', { class: ignored ? 'off' : null, id: 'bypass-set' }, h('legend', null, 'Networks allowed without auth'),
      field({ id: 'net-bypass', label: 'Allowed without auth', type: 'textarea', value: n.allowed_without_auth.join('\n'), check: netsCheck(8), disabled: ignored,
        hint: ignored ? 'Ignored while the server is secured (a Home member or a PIN exists): every request needs a token, whatever this list says.'
          : 'Devices here may read libraries without signing in. Never opens owner settings.' })),
    { id: 'net-wanlan', label: 'Treat WAN IP as LAN', type: 'checkbox', value: n.treat_wan_ip_as_lan, hint: 'Requests that arrive from your own public address (hairpin NAT) count as LAN.' },
    { id: 'net-proxies', label: 'Trusted proxies', type: 'textarea', value: n.trusted_proxies.join('\n'), check: netsCheck(4), hint: 'X-Forwarded-For is believed only from these addresses (at most 4).' },
    { id: 'net-hosts', label: 'Host names', type: 'textarea', value: (n.host_names || []).join('\n'), check: hostsCheck(4), placeholder: 'home.example.net',
      hint: 'This server answers only requests addressed to an IP address, its hostname, hostname.local or localhost, so a web page elsewhere cannot reach it under a borrowed name. Add other names you use to reach it here, one per line (a dynamic-DNS name, a name in your own DNS; at most 4).' },
  ], 'Save network settings', async f => {
    const b = { lan_networks: lines(val(f, 'net-lan')), treat_wan_ip_as_lan: val(f, 'net-wanlan'), trusted_proxies: lines(val(f, 'net-proxies')), host_names: lines(val(f, 'net-hosts')) };
    if (!ignored) b.allowed_without_auth = lines(val(f, 'net-bypass'));
    const r = await api('PUT', 'settings/network', b); if (!r.ok) return r.msg;
    f.querySelector('#net-error').textContent = ''; route();
  });
  show('Network', f, h('h3', null, 'Secure connections and certificate'), tls.missing ? notYet('Secure connections and certificate settings') : tlsPart(tls));
}
function tlsPart(t) {
  const c = t.certificate;
  const day = s => new Date(s * 1000).toLocaleDateString();
  const mode = form('tls', [{ id: 'tls-mode', label: 'Secure connections', type: 'select', value: t.secure_connections,
    options: [['required', 'Required'], ['preferred', 'Preferred'], ['disabled', 'Disabled']],
    hint: 'Required: plain http:// is refused (browsers are sent to https://). Preferred: both work. Disabled: https:// is not offered.' }],
  'Save', async f => {
    const m = val(f, 'tls-mode');
    const r = await api('PUT', 'settings/tls', { secure_connections: m }); if (!r.ok) return r.msg;
    // Follow the setting ourselves: the next plain request would be refused, or https would stop answering.
    if (m === 'required' && location.protocol === 'http:') location.href = 'https://' + location.host + '/web/#network';
    else if (m === 'disabled' && location.protocol === 'https:') location.href = 'http://' + location.host + '/web/#network';
    else route();
  });
  return [mode,
    h('div', { id: 'certificate' }, c ? facts([['Certificate', c.source === 'acme' ? c.issuer + ' (browsers trust it)' : c.custom ? 'Installed by you' : 'Made by Hearth (self-signed; browsers warn once)'],
      ['Valid', day(c.not_before) + ' to ' + day(c.not_after)], ['SHA-256', h('span', { class: 'token' }, c.sha256 || '?')]]) : p('No certificate yet.', 'mut')),
    c && c.custom ? action('Go back to the self-signed certificate', async () => { const r = await api('PUT', 'settings/tls', { use_self_signed: true }); if (!r.ok) return r.msg; route(); }, 'quiet') : null,
    h('h3', null, 'Install your own certificate'),
    form('cert', [
      { id: 'cert-pem', label: 'Certificate chain (PEM, leaf first)', type: 'textarea', rows: 5, required: true, check: v => /-----BEGIN CERTIFICATE-----/.test(v) ? '' : 'Paste the PEM text, starting with -----BEGIN CERTIFICATE-----.' },
      { id: 'cert-key', label: 'Private key (PEM)', type: 'textarea', rows: 5, required: true, secret: true, check: v => /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(v) ? '' : 'Paste the PEM key, starting with -----BEGIN PRIVATE KEY----- (or EC/RSA PRIVATE KEY).' },
    ], 'Install certificate', async f => {
      const r = await api('PUT', 'settings/tls', { certificate_pem: val(f, 'cert-pem'), key_pem: val(f, 'cert-key') }); if (!r.ok) return r.msg; route();
    }), t.acme ? acmePart(t.acme) : null];
}
// Issue 21: a certificate browsers trust from an ACME CA; what the last order did in one sentence, details under it.
function acmePart(a) {
  const st = a.status || {};
  return [h('h3', null, 'A certificate browsers trust (ACME)'),
    h('div', { id: 'acme-status' }, p(st.sentence || '', st.stage === 'failed' ? 'err' : null),
      st.detail ? h('details', null, h('summary', null, 'Show details'), p(st.detail, 'mut')) : null),
    form('acme', [
      { id: 'acme-on', label: 'Get a certificate from an ACME CA', type: 'checkbox', value: a.enabled, hint: 'The CA checks this server through your public address on port 80; Hearth asks your router for that port while it orders.' },
      { id: 'acme-domain', label: 'Domain (optional)', value: a.domain || '', placeholder: 'your public IPv4 address', check: v => !v || /^[A-Za-z0-9.:\[\]-]+$/.test(v) ? '' : 'A domain looks like home.example.net.' },
      { id: 'acme-dir', label: 'CA directory URL', value: a.directory_url, required: true, check: v => /^https:\/\/\S+$/.test(v) ? '' : 'A URL that starts with https, from your CA.' },
    ], 'Save', async f => {
      const r = await api('PUT', 'settings/tls', { acme: { enabled: val(f, 'acme-on'), domain: val(f, 'acme-domain'), directory_url: val(f, 'acme-dir') } }); if (!r.ok) return r.msg; route();
    }),
    a.enabled ? action('Renew now', async () => { const r = await api('PUT', 'settings/tls', { acme_renew_now: true }); if (!r.ok) return r.msg; route(); }, 'quiet') : null];
}

// ---- DLNA ----
async function dlna() {
  const [d, lib] = await Promise.all([need('settings/dlna'), need('libraries')]);
  const libs = lib.missing ? null : lib.libraries;
  const slot = h('div', { id: 'dlna-warning' });
  // Securing the server turned DLNA off (the owner's switch stays, the acknowledgement is cleared): show it off.
  const offBySecuring = d.enabled && d.secured && !d.warning_acknowledged, on = d.enabled && !offBySecuring;
  const sw = h('input', { type: 'checkbox', id: 'dlna-on', checked: on, 'aria-describedby': 'dlna-state dlna-on-err' });
  const err = errEl('dlna-on-err');
  async function put(b) {
    const r = await api('PUT', 'settings/dlna', b);
    if (r.status === 409 && b.enabled && !b.acknowledge_warning) return warn(r.msg);
    if (!r.ok) { err.textContent = r.msg; sw.checked = on; return; }
    route();
  }
  function warn(text) {
    sw.checked = false;
    const yes = h('button', { type: 'button', id: 'dlna-ack', onclick: () => put({ enabled: true, acknowledge_warning: true }) }, 'I understand: turn DLNA on');
    slot.replaceChildren(h('div', { class: 'warnbox', role: 'alertdialog', 'aria-labelledby': 'dlna-w-t', 'aria-describedby': 'dlna-w-d' },
      h('h3', { id: 'dlna-w-t' }, 'Any DLNA device gets unrestricted access'), p(text || d.warning, null), 
      h('div', { class: 'row' }, yes, h('button', { type: 'button', class: 'quiet', onclick: () => slot.replaceChildren() }, 'Keep DLNA off'))));
    slot.querySelector('p').id = 'dlna-w-d';
    yes.focus();
  }
  sw.addEventListener('change', () => {
    err.textContent = '';
    if (sw.checked && d.secured && !d.warning_acknowledged) return warn(d.warning);
    put({ enabled: sw.checked });
  });
  const state = d.effectively_on ? 'DLNA is on: TVs and players on your network can find this server.'
    : offBySecuring ? 'DLNA is off: it turned off when the server became secured.' : d.enabled ? 'DLNA is switched on but not running (safe mode keeps it off).' : 'DLNA is off.';
  show('DLNA',
    h('div', { class: 'field check' }, sw, h('label', { for: 'dlna-on' }, 'Enable the DLNA server'), err),
    h('p', { id: 'dlna-state', class: d.effectively_on ? 'ok' : 'mut' }, state),
    p('Hearth answers DLNA from LAN addresses only (the LAN networks in Network settings), with the libraries chosen below.', 'hint'),
    d.secured ? p('The server is secured. DLNA devices cannot sign in, so turning DLNA on means accepting that warning.', 'hint') : null,
    slot,
    h('h3', null, 'Libraries DLNA shows'),
    libs ? form('dlnalibs', [shareBoxes('dl', libs, d.libraries), p('None ticked: all libraries.', 'hint')], 'Save', async f => {
      const r = await api('PUT', 'settings/dlna', { libraries: sharesOf(f, 'dl', libs) }); if (!r.ok) return r.msg; route();
    }) : p('Libraries are not available on this server yet; DLNA shows all of them.', 'hint'));
}

// ---- remote access (laid out like the seed's page) ----
const STREAM_LIMITS = [[0, 'Original (no limit)'], [20000, '20 Mbps'], [12000, '12 Mbps'], [10000, '10 Mbps'], [8000, '8 Mbps'], [4000, '4 Mbps'], [3000, '3 Mbps'], [2000, '2 Mbps'], [1500, '1.5 Mbps'], [720, '720 kbps']];
function remoteStatus(st) {
  const s = st.state;
  const [cls, head] = s === 'successful' ? ['ok', 'Fully accessible outside your network'] : s === 'unsuccessful' ? ['bad', 'Not available outside your network']
    : s === 'mapping' ? ['warn', 'Trying to set up remote access\u2026'] : s === 'checking' ? ['warn', 'Checking again\u2026'] : ['', 'Remote access is disabled'];
  const why = s === 'unsuccessful' ? (st.reason && st.reason.sentence) || st.sentence : st.sentence;
  return h('div', { class: 'status', id: 'remote-status', 'data-state': s }, h('span', { class: 'dot ' + cls, 'aria-hidden': 'true' }),
    h('div', null, h('strong', null, head), why ? p(why, s === 'unsuccessful' ? 'bad' : 'mut') : null, st.families ? families(st.families) : null,
      st.reason && st.reason.detail ? h('details', { id: 'remote-detail' }, h('summary', null, 'Show details'), p(st.reason.detail, 'mut')) : null));
}
// IPv4 and IPv6 side by side (issue 21): where each is reachable and how.
const FAMILY = { off: 'off', no_address: 'no address from your provider', opening: 'asking the router\u2026', open: 'open, not verified from outside',
  reachable: 'reachable, verified from outside', unreachable: 'open, but not reachable from outside', closed: 'not open' };
function families(f) {
  const line = x => (FAMILY[x.state] || x.state) + (x.at ? ' at ' + x.at : '') + (x.method ? ' through ' + x.method : '');
  return h('div', { id: 'remote-families' }, facts([['IPv4', line(f.ipv4)], ['IPv6', line(f.ipv6)]]));
}
function mapping(m) {
  const a = x => x || 'unknown', link = x => x == null ? 'not checked' : x ? 'established' : 'not established';
  return facts([['Private address', a(m.private_addr) + (m.interface ? ' (' + m.interface + ')' : '')], ['Router', a(m.router) + (m.gateway ? ' at ' + m.gateway : '')],
    ['Public address (router)', a(m.router_external_addr)], ['Public address (STUN)', a(m.public_addr_stun)],
    ['Server \u2194 router', link(m.server_router_up)], ['Router \u2194 internet', link(m.router_internet_up)]]);
}
async function remote(live) {
  const d = await need('remote');
  if (d.missing) return show('Remote access', notYet('Remote access'));
  const st = d.settings, on = st.enabled;
  const statusBox = h('div', { class: 'card' }, remoteStatus(d.status));
  const adv = h('div', { id: 'remote-advanced', hidden: true }, h('h3', null, 'Server mapping'), mapping(d.server_mapping));
  const advBtn = h('button', { type: 'button', class: 'quiet', 'aria-expanded': 'false', 'aria-controls': 'remote-advanced',
    onclick: () => { adv.hidden = !adv.hidden; advBtn.setAttribute('aria-expanded', String(!adv.hidden)); advBtn.textContent = adv.hidden ? 'Show advanced' : 'Hide advanced'; } }, 'Show advanced');
  const post = what => async () => { const r = await api('POST', 'remote/' + what); if (!r.ok) return r.msg; route(); };
  show('Remote access', statusBox,
    h('div', { class: 'row' }, on ? action('Retry', post('retry')) : action('Enable', post('enable')), on ? action('Disable', post('disable'), 'danger') : null),
    form('remote', [
      { id: 'remote-manual', label: 'Manually specify public port', type: 'checkbox', value: st.manual_port != null, hint: 'Tick this if you forwarded a port on your router by hand; Hearth then does not ask the router.' },
      { id: 'remote-port', label: 'Public port', type: 'number', min: 1, max: 65535, value: st.manual_port || 32400, check: (v, f) => !val(f, 'remote-manual') || (/^\d+$/.test(v) && +v >= 1 && +v <= 65535) ? '' : 'A port is 1 to 65535.' },
      { id: 'remote-upload', label: 'Internet upload speed (Mbps)', type: 'number', min: 0, step: 'any', value: st.upload_kbps / 1000, hint: '0: not set. All remote streams and downloads together stay under this.', check: v => v === '' || (+v >= 0 && +v <= 10000) ? '' : '0 to 10000 Mbps.' },
      { id: 'remote-stream', label: 'Limit remote stream bitrate', type: 'select', value: STREAM_LIMITS.some(x => x[0] === st.stream_kbps) ? st.stream_kbps : 0,
        options: STREAM_LIMITS.some(x => x[0] === st.stream_kbps) ? STREAM_LIMITS : STREAM_LIMITS.concat([[st.stream_kbps, st.stream_kbps + ' kbps']]) },
    ], 'Save', async f => {
      const r = await api('PUT', 'remote', { manual_port: val(f, 'remote-manual') ? +val(f, 'remote-port') : null,
        upload_kbps: Math.round(+val(f, 'remote-upload') * 1000), stream_kbps: +val(f, 'remote-stream') });
      if (!r.ok) return r.msg; route();
    }),
    advBtn, adv);
  later(async () => {
    if (!live()) return;
    const r = await api('GET', 'remote').catch(e => { handleFatal(e); return null; });
    if (!r || !r.ok || !live()) return;
    statusBox.replaceChildren(remoteStatus(r.data.status));
    adv.replaceChildren(h('h3', null, 'Server mapping'), mapping(r.data.server_mapping));
  }, 2000);
}

// ---- system and the egress graph ----
const REASONS = { power_loss: 'Power loss', watchdog: 'Watchdog reset', clean: 'Clean stop', crash: 'Crash' };
const CLASSES = [['lan_bytes', 'LAN'], ['remote_stream_bytes', 'Remote streams'], ['remote_download_bytes', 'Remote downloads']];
function graph(samples) {
  const NS = 'http://www.w3.org/2000/svg', W = 600, H = 160, P = 30;
  const s = (t, a) => { const e = document.createElementNS(NS, t); for (const k in a) e.setAttribute(k, a[k]); return e; };
  const max = Math.max(1000, ...samples.flatMap(x => x));
  const svg = s('svg', { viewBox: '0 0 ' + W + ' ' + H, class: 'graph', role: 'img', 'aria-labelledby': 'graph-t' });
  const t = s('title', { id: 'graph-t' }); t.textContent = 'Egress over the last ' + samples.length * 2 + ' s: ' + CLASSES.map((c, i) => c[1] + ' ' + rate((samples[samples.length - 1] || [0, 0, 0])[i])).join(', ');
  svg.append(t);
  for (const f of [0, .5, 1]) { const y = H - P - f * (H - 2 * P); svg.append(s('line', { x1: P, x2: W, y1: y, y2: y, class: 'grid' })); const l = s('text', { x: 2, y: y + 4 }); l.textContent = rate(max * f).replace('/s', ''); svg.append(l); }
  CLASSES.forEach((c, i) => {
    const pts = samples.map((x, j) => (P + j * (W - P) / 59).toFixed(1) + ',' + (H - P - x[i] / max * (H - 2 * P)).toFixed(1)).join(' ');
    svg.append(s('polyline', { points: pts, fill: 'none', 'stroke-width': 2, class: 's' + i }));
    svg.append(s('rect', { x: P + i * 170, y: H - 16, width: 10, height: 10, class: 'k' + i }));
    const l = s('text', { x: P + i * 170 + 14, y: H - 7 }); l.textContent = c[1]; svg.append(l);
  });
  return svg;
}
// The Firmware section (issue 19): both slots, the last update, an upload with progress, then the restart.
function firmware(u) {
  if (!u) return null;
  const dev = u.trusts_dev_key ? p('This firmware accepts updates signed with the development key: anyone can make one. Fine for a test box, not for a home.', 'bad') : null;
  const sl = u.slots;
  if (!sl) return h('div', { id: 'firmware' }, facts([['Version', u.version]]), dev, p('This server does not run from a boot slot, so it cannot install updates here.', 'mut'));
  const last = sl.last_update;
  const box = h('div', { id: 'update-box' });
  const restart = v => action('Restart into version ' + v, async () => { const r = await api('POST', 'system/reboot', { action: 'reboot' }); if (!r.ok) return r.msg; box.replaceChildren(p('Restarting\u2026 the page comes back when the box does.', 'mut')); });
  const file = h('input', { type: 'file', id: 'bundle', accept: '.bundle' });
  const bar = h('progress', { id: 'upload-progress', max: 100, value: 0, hidden: true });
  const err = h('p', { class: 'err', id: 'upload-error', role: 'alert' });
  const go = h('button', { type: 'button', id: 'upload', onclick: () => {
    const f = file.files[0]; err.textContent = '';
    if (!f) { err.textContent = 'Choose a hearth-<version>-<board>.bundle file first.'; return; }
    const x = new XMLHttpRequest();
    x.open('POST', '/api/v1/system/update' + (down.checked ? '?allow_downgrade=1' : ''));
    x.setRequestHeader('Accept', 'application/json');
    x.setRequestHeader('Content-Type', 'application/octet-stream');
    x.setRequestHeader('X-Plex-Client-Identifier', clientId);
    const t = token.get(); if (t) x.setRequestHeader('X-Plex-Token', t);
    x.upload.onprogress = e => { if (e.lengthComputable) bar.value = Math.round(e.loaded / e.total * 100); };
    x.onload = () => {
      busy(go, false); bar.hidden = true;
      let d = null; try { d = JSON.parse(x.responseText); } catch (e) { d = null; }
      if (x.status === 200 && d) { box.replaceChildren(p(d.message, 'ok'), restart(d.restart_into)); return; }
      err.textContent = d && d.error ? d.error.message : 'The server answered ' + x.status + '.';
    };
    x.onerror = () => { busy(go, false); bar.hidden = true; err.textContent = 'The connection broke during the upload; nothing was installed. Try again.'; };
    busy(go, true); bar.hidden = false; bar.value = 0;
    x.send(f);
  } }, 'Upload and install');
  const down = h('input', { type: 'checkbox', id: 'allow-downgrade' });
  box.append(h('div', { class: 'row' }, file, go), h('label', null, down, ' Allow an older version (a downgrade)'), bar, err);
  if (last && last.outcome === 'pending' && last.slot !== sl.booted) box.append(restart(last.version));
  return h('div', { id: 'firmware' },
    facts([['Running', 'slot ' + sl.booted + ', version ' + sl.booted_version + (sl.confirmed ? '' : ' (not yet confirmed)')],
      ['Other slot', 'slot ' + sl.other + ', ' + (sl.other_version ? 'version ' + sl.other_version : 'version unknown')],
      ['Next boot', 'slot ' + sl.next_boot],
      ['Last update', last ? last.message : 'none yet']]),
    last && last.outcome === 'failed' ? p(last.message[0].toUpperCase() + last.message.slice(1) + ': the new version did not start properly three times, so the box went back to the version it ran before.', 'bad') : null,
    dev, box);
}
async function system(live) {
  const d = await need('system');
  if (d.missing) return show('System', notYet('System status'));
  const up = h('dd', { id: 'uptime' }, dur(d.uptime_seconds));
  const st = d.store;
  const graphBox = h('div', { id: 'egress' }, 'egress' in d ? p('Measuring\u2026', 'mut') : notYet('The egress graph'));
  const logBox = !('log' in d) ? notYet('The recent log') : d.log.length ? h('pre', { class: 'log', id: 'log' }, d.log.join('\n')) : p('Nothing logged since start at this log level.', 'mut');
  show('System',
    h('dl', { class: 'facts' }, h('dt', null, 'Version'), h('dd', null, d.version), h('dt', null, 'Uptime'), up,
      d.tls ? [h('dt', null, 'HTTPS'), h('dd', { id: 'tls-path' }, d.tls.path + (d.tls.suites ? ' · ' + d.tls.suites.preferred + ' first' : ''))] : null,
      h('dt', null, 'Safe mode'), h('dd', { id: 'safe-mode', class: d.safe_mode.active ? 'bad' : null }, d.safe_mode.active ? 'On since ' + when(d.safe_mode.since) + ': remote access and DLNA stay off.' : 'Off')),
    d.safe_mode.active ? h('div', { class: 'row', id: 'safe-mode-box' },
      p('The watchdog reset this box ' + d.resets.filter(r => r.reason === 'watchdog').length + ' times recently (see Last resets below): a part of Hearth stopped responding each time. Remote access and DLNA were turned off in case one of them is the cause. Leaving safe mode turns each back on as its own switch says; if the resets come back, safe mode returns.', 'bad'),
      action('Leave safe mode', async () => { const r = await api('DELETE', 'system/safe-mode'); if (!r.ok) return r.msg; if (server) server.safe_mode = false; route(); })) : null,
    d.update ? [h('h3', null, 'Firmware'), firmware(d.update)] : null,
    h('h3', null, 'Watchdog'), 'watchdog' in d ? facts(Object.entries(d.watchdog).map(([k, v]) => [k, String(v)])) : notYet('Watchdog state'),
    h('h3', null, 'Last resets'), d.resets.length ? h('ul', { id: 'resets' }, d.resets.map(r => h('li', null, (REASONS[r.reason] || r.reason) + ', ' + (r.at ? when(r.at) : 'time unknown (the clock was not set)')))) : p('No resets recorded.', 'mut'),
    h('h3', null, 'Flash store'),
    d.recovered_from_damage ? p('At start neither flash slot held a valid record: the server runs on defaults. Settings made since then are stored normally.', 'bad') : p('Healthy: the newest record was read at start.', 'ok'),
    facts([['Record sequence', st.seq], ['Active slot', st.active_slot + ' (generation ' + st.generation + ')'], ['Written since start', st.records_written + ' records, ' + st.bytes_written + ' bytes'],
      ['Erases since start', st.erases], ['Damaged records skipped at start', st.skipped_at_open]]),
    'erases_per_block' in st ? h('p', { class: 'mut', id: 'wear' }, 'Wear: each erase block was erased about ' + st.erases_per_block + ' times so far (NOR flash is typically rated for 100,000). Writes are paced to at most ' + st.write_budget.erases_per_block_per_hour + ' erases per block per hour after a burst' + (st.merged_updates ? '; ' + st.merged_updates + ' changes since start were merged into a later write' : '') + '.') : null,
    h('h3', null, 'Recent log'), logBox,
    h('h3', null, 'Egress'), graphBox);
  logBox.scrollTop = logBox.scrollHeight; // newest last: show the newest
  let last = null; const samples = [];
  later(async () => {
    if (!live()) return;
    const r = await api('GET', 'system').catch(e => { handleFatal(e); return null; });
    if (!r || !r.ok || !live()) return;
    up.textContent = dur(r.data.uptime_seconds);
    const e = r.data.egress; if (!e) return;
    const now = performance.now();
    if (last) { const dt = (now - last.t) / 1000; samples.push(CLASSES.map(([k]) => Math.max(0, (e[k] - last.e[k]) / dt))); if (samples.length > 60) samples.shift(); graphBox.replaceChildren(graph(samples)); }
    last = { t: now, e };
  }, 2000);
}

// ---- start ----
$('#signout').addEventListener('click', async () => {
  try { await api('POST', 'sign-out'); } catch (e) { /* signed out locally either way */ }
  token.set(null); me = null; S.removeItem('hearth.drafts'); boot();
});
$('#switch').addEventListener('click', () => { location.hash = '#profiles'; });
window.addEventListener('hashchange', () => { if (me) route(); });
boot();
