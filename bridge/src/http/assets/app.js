// ctrl22 dashboard. Plain JavaScript, no build step, no network beyond the bridge itself.
// Reads the site from api/v1/stream (server-sent events) and writes through the same API
// as every other client. Every URL is relative, so the page works under a path prefix
// (Home Assistant ingress). It first asks api/v1/auth whether changes are possible and
// whether reading needs a login; the token is asked for when needed and exchanged for an
// HttpOnly session cookie (api/v1/login), so the script never keeps it.
'use strict';

const $ = (id) => document.getElementById(id);
const MODES = [['off', 'Off'], ['now', 'Now'], ['minpv', 'Min + PV'], ['pv', 'PV only'], ['schedule', 'Schedule']];
const PHASES = ['L1', 'L2', 'L3'];
const rows = new Map();
let lastEventAt = 0;

// ---------- formatting ----------
function kw(w) {
  if (w === null || w === undefined) return '\u2013';
  const k = Math.abs(w) / 1000;
  return (k >= 10 ? k.toFixed(1) : k.toFixed(2)) + ' kW';
}
const amps = (a) => (a === null || a === undefined ? '\u2013' : a.toFixed(1));
const kwh = (wh) => (wh / 1000).toFixed(wh >= 100000 ? 0 : 2) + ' kWh';
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// ---------- toast ----------
let toastTimer = 0;
function toast(text, bad) {
  const t = $('toast');
  t.textContent = text;
  t.className = 'show' + (bad ? ' bad' : '');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.className = ''; }, bad ? 6000 : 2500);
}

// ---------- login and writes ----------
// What api/v1/auth said: { writable, protect_reads, authenticated }.
let access = { writable: false, protect_reads: false, authenticated: false };

async function fetchAuth() {
  const res = await fetch('api/v1/auth');
  if (!res.ok) throw new Error(res.status + ' ' + res.statusText);
  access = await res.json();
  showAccess();
}

function showAccess() {
  const pill = $('access');
  pill.hidden = false;
  if (!access.writable) {
    pill.textContent = 'read-only';
    pill.className = 'pill warn';
    pill.title = 'No [http] token is configured: nobody can change settings here';
  } else {
    pill.textContent = access.authenticated ? 'logged in' : 'not logged in';
    pill.className = 'pill' + (access.authenticated ? ' ok' : '');
    pill.title = access.authenticated ? 'Changes are allowed' : 'Changes ask for the token';
  }
  $('logout').hidden = !access.authenticated;
  document.body.classList.toggle('readonly', !access.writable);
}

// Logs in with `token`; returns '' on success or why not.
async function login(token) {
  let res;
  try {
    res = await fetch('api/v1/login', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token }),
    });
  } catch (e) {
    return 'the bridge cannot be reached: ' + e.message;
  }
  if (res.ok) {
    access.authenticated = true;
    showAccess();
    return '';
  }
  try { return (await res.json()).error || res.statusText; } catch (e) { return res.status + ' ' + res.statusText; }
}

function askToken(error) {
  const dialog = $('token-dialog');
  const input = $('token-input');
  $('token-error').textContent = error || '';
  input.value = '';
  return new Promise((resolve) => {
    const done = (value) => {
      $('token-form').onsubmit = null;
      $('token-cancel').onclick = null;
      dialog.onclose = null;
      if (dialog.open) dialog.close();
      resolve(value);
    };
    $('token-form').onsubmit = (ev) => { ev.preventDefault(); done(input.value.trim() || null); };
    $('token-cancel').onclick = () => done(null);
    dialog.onclose = () => done(null);
    dialog.showModal();
    input.focus();
  });
}

// Sends a write; logs in first (asking for the token) when not logged in or the login has
// ended. Returns the answer's JSON (or true for an empty answer), null when refused or
// cancelled.
async function write(method, path, body, done) {
  if (!access.writable) {
    toast('Read-only: the bridge has no [http] token, so nothing can be changed here', true);
    return null;
  }
  let error = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    while (!access.authenticated) {
      const token = await askToken(error);
      if (!token) return null;
      error = await login(token);
    }
    let res;
    try {
      res = await fetch(path, {
        method,
        // The cookie rides along (same origin); the extra header is what the bridge asks
        // of cookie writes, which no form of another site can send.
        headers: { 'X-Requested-With': 'ctrl22', 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      toast('The bridge cannot be reached: ' + e.message, true);
      return null;
    }
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : true; } catch (e) { data = null; }
    if (res.status === 401) {
      access.authenticated = false;
      showAccess();
      error = (data && data.error) || 'log in again';
      continue;
    }
    if (!res.ok) {
      toast((data && data.error) || res.status + ' ' + res.statusText, true);
      return null;
    }
    toast(done);
    return data;
  }
  toast('Not changed: ' + error, true);
  return null;
}

const bayPath = (dev) => 'api/v1/nodes/' + encodeURIComponent(dev);

// ---------- power flow ----------
function flowLine(id, watts, forwardWhenPositive) {
  const line = $(id);
  const active = watts !== null && watts !== undefined && Math.abs(watts) >= 50;
  line.classList.toggle('active', active);
  line.classList.toggle('reverse', active && (watts > 0) !== forwardWhenPositive);
}

function setText(id, text, unknown) {
  const e = $(id);
  e.textContent = text;
  e.classList.toggle('unknown', !!unknown);
}

function renderFlow(s) {
  const charging = s.bays.filter((b) => b.charging).length;
  setText('v-pv', kw(s.pv_power_w), s.pv_power_w === null);
  setText('s-pv', s.pv_power_w === null ? 'no reading' : s.solar_ok ? 'production' : 'stale');
  setText('v-grid', kw(s.grid_power_w), s.grid_power_w === null);
  setText('s-grid', s.grid_power_w === null ? 'no meter' : s.grid_power_w >= 0 ? 'import' : 'export');
  setText('v-cars', kw(s.ev_power_w));
  setText('s-cars', charging + (charging === 1 ? ' car charging' : ' cars charging'));
  setText('v-battery', kw(s.battery_power_w), s.battery_power_w === null);
  setText('s-battery', s.battery_power_w === null ? 'none' : s.battery_power_w >= 0 ? 'discharging' : 'charging');
  flowLine('line-pv', s.pv_power_w, true);
  flowLine('line-grid', s.grid_power_w, true);
  flowLine('line-cars', s.ev_power_w, true);
  flowLine('line-battery', s.battery_power_w, false);
  // A negative surplus is a shortfall: solar charging gets nothing.
  $('surplus').textContent = s.surplus_w === null ? '\u2013' : s.surplus_w > 0 ? kw(s.surplus_w) : 'none';
  renderEnergy(s);
}

// The grid meter, the house load it shows, outside limits and how the sources fare.
function renderEnergy(s) {
  const p = s.power || {};
  const amps = (a) => a.map((x) => x.toFixed(1)).join(' / ') + ' A';
  setText('e-grid', p.grid_phase_a ? amps(p.grid_phase_a) : '\u2013', !p.grid_phase_a);
  let house = 'no grid meter';
  if (p.house_load_managed) {
    house = p.house_fallback ? 'meter stale' : p.house_load_a ? amps(p.house_load_a) : '\u2013';
    if (p.house_limit_a) house += ' \u2192 cars up to ' + amps(p.house_limit_a);
  }
  setText('e-house', house, !p.house_load_a);
  const ext = (p.external || []).map((e) =>
    (e.watts !== null && e.watts !== undefined ? kw(e.watts) : amps(e.limit_a || [])) + ' on ' + e.scope);
  setText('e-external', ext.length ? ext.join(', ') : 'none', !ext.length);
  const sources = (p.sources || []).map((x) => '#' + x.source + ' ' + (x.healthy ? 'ok' : 'down') +
    (x.age_ms !== null && x.age_ms !== undefined ? ' (' + Math.round(x.age_ms / 1000) + ' s ago)' : '') +
    (x.errors ? ', ' + x.errors + ' errors' : '') + (x.last_error && !x.healthy ? ': ' + x.last_error : ''));
  setText('e-sources', sources.length ? sources.join('; ') : 'none configured', !sources.length);
  $('e-fallback').hidden = !p.house_fallback;
  if (p.battery_soc_pct !== null && p.battery_soc_pct !== undefined && s.battery_power_w !== null) {
    $('s-battery').textContent += ' \u00b7 ' + Math.round(p.battery_soc_pct) + ' %';
  }
}

// ---------- phase bars ----------
function renderPhases(s) {
  const box = $('phases');
  if (!box.children.length) {
    for (const name of PHASES) {
      const row = el('div', 'phase');
      row.append(el('span', 'name', name));
      const bar = el('div', 'bar');
      bar.append(el('div', 'reserved'), el('div', 'measured'));
      const label = el('label', 'limit', 'limit');
      const input = el('input', 'phase-limit');
      Object.assign(input, { type: 'number', min: 0, step: 1 });
      input.setAttribute('aria-label', `Limit of ${name} in amperes`);
      input.addEventListener('change', () => setLimit(box, input));
      label.append(input, el('span', 'ceiling'));
      row.append(bar, el('div', 'nums'), label);
      box.append(row);
    }
  }
  [...box.children].forEach((row, i) => {
    const limit = s.limit_a[i];
    const reserved = s.reserved_a[i];
    const measured = s.measured_a[i];
    const scale = Math.max(limit, reserved, measured, 1);
    const bar = row.querySelector('.bar');
    bar.classList.toggle('over', measured > limit);
    bar.querySelector('.reserved').style.width = (100 * reserved / scale) + '%';
    bar.querySelector('.measured').style.width = (100 * measured / scale) + '%';
    row.querySelector('.nums').textContent =
      `${amps(measured)} A measured \u00b7 ${amps(reserved)} A reserved \u00b7 limit ${amps(limit)} A`;
    const input = row.querySelector('input.phase-limit');
    input.max = s.ceiling_a[i];
    if (document.activeElement !== input && !box.classList.contains('saving')) input.value = limit;
    row.querySelector('.ceiling').textContent = `A of ${amps(s.ceiling_a[i])} A (fuse)`;
  });
  $('limit-note').textContent = `${s.voltage} V`;
}

async function setLimit(box, changed) {
  const limits = [...box.querySelectorAll('input.phase-limit')].map((input) => Number(input.value));
  box.classList.add('saving');
  await write('PUT', 'api/v1/site', { max_current: limits }, `limits ${limits.join(' / ')} A`);
  box.classList.remove('saving');
  changed.blur();
}

// ---------- bays ----------
function makeRow(bay) {
  const tr = el('tr');
  tr.dataset.dev = bay.dev;
  const cell = (label, cls) => { const td = el('td', cls); td.dataset.label = label; tr.append(td); return td; };

  const name = cell('Bay', 'bay');
  const wrap = el('div');
  wrap.append(el('span', 'dot'), el('span', 'name'), el('div', 'dev', bay.dev));
  name.append(wrap);

  const state = cell('State');
  state.append(el('span', 'state'), el('span', 'reason'));
  cell('Current L1/L2/L3', 'num cur');
  cell('Allocated', 'num alloc');

  const select = el('select', 'mode');
  select.setAttribute('aria-label', 'Charge mode');
  for (const [value, label] of MODES) {
    const option = el('option', '', label);
    option.value = value;
    select.append(option);
  }
  select.addEventListener('change', async () => {
    tr.classList.add('saving');
    // Refused or cancelled: the next snapshot puts the select back to the bay's mode.
    await write('PUT', bayPath(bay.dev), { mode: select.value }, `${bay.dev}: mode ${select.value}`);
    tr.classList.remove('saving');
    select.blur();
  });
  cell('Mode').append(select);

  const max = el('input', 'max');
  Object.assign(max, { type: 'number', min: 6, max: bay.ceiling_a, step: 1 });
  max.setAttribute('aria-label', 'Maximum current in amperes');
  max.addEventListener('change', async () => {
    const value = Number(max.value);
    tr.classList.add('saving');
    await write('PUT', bayPath(bay.dev), { max_current: value }, `${bay.dev}: max ${value} A`);
    tr.classList.remove('saving');
    max.blur();
  });
  const maxCell = el('span', 'maxcell');
  maxCell.append(max, el('span', 'muted', 'A'));
  cell('Max current').append(maxCell);

  cell('Energy', 'num energy');

  const buttons = el('div', 'actions');
  for (const action of ['start', 'stop']) {
    const b = el('button', action, action === 'start' ? 'Start' : 'Stop');
    b.type = 'button';
    b.addEventListener('click', () => write('POST', `${bayPath(bay.dev)}/${action}`, undefined, `${bay.dev}: ${action} sent`));
    buttons.append(b);
  }
  cell('', 'btns').append(buttons);
  return tr;
}

function updateRow(tr, bay) {
  tr.querySelector('.dot').classList.toggle('on', bay.online);
  tr.querySelector('.dot').title = bay.online ? 'online' : 'offline';
  tr.querySelector('.name').textContent = bay.name;
  const state = tr.querySelector('.state');
  state.textContent = bay.status.replace('_', ' ') + (bay.state ? ` (${bay.state})` : '');
  state.className = 'state ' + bay.status;
  tr.querySelector('.reason').textContent = bay.reason || '';
  tr.querySelector('.cur').textContent = bay.current_a.map(amps).join(' / ') + ' A';
  tr.querySelector('.alloc').textContent = amps(bay.allocated_a) + ' A';
  const select = tr.querySelector('select.mode');
  if (document.activeElement !== select && !tr.classList.contains('saving')) select.value = bay.mode;
  const max = tr.querySelector('input.max');
  max.max = bay.ceiling_a;
  max.title = `at most ${amps(bay.ceiling_a)} A (the configured ceiling)`;
  if (document.activeElement !== max && !tr.classList.contains('saving')) max.value = bay.settings.max_current / 10;
  const energy = tr.querySelector('.energy');
  energy.textContent = bay.session_started_ms ? kwh(bay.session_energy_wh) : '\u2013';
  energy.title = 'lifetime ' + kwh(bay.total_energy_wh);
}

function renderBays(s) {
  const body = $('bays').querySelector('tbody');
  const seen = new Set();
  for (const bay of s.bays) {
    seen.add(bay.dev);
    let tr = rows.get(bay.dev);
    if (!tr) {
      tr = makeRow(bay);
      rows.set(bay.dev, tr);
      body.append(tr);
    }
    updateRow(tr, bay);
  }
  for (const [dev, tr] of rows) {
    if (!seen.has(dev)) { tr.remove(); rows.delete(dev); }
  }
  const online = s.bays.filter((b) => b.online).length;
  $('bay-count').textContent = `${online} of ${s.bays.length} online`;
  $('no-bays').hidden = s.bays.length > 0;
}

// ---------- fleet tree ----------
// One row per bay, in mesh order: the root first, every bay indented under the parent its
// `status` names, with what runs on it, where it sits in the mesh, the images of the
// firmware folder it could get (installed by the core's job queue, which refuses a charging
// bay; the refusal comes back as the toast), and the progress of its running job.
const macKey = (m) => (m ? String(m).toLowerCase().replace(/[^0-9a-f]/g, '') : '');
const FINISHED = ['succeeded', 'failed', 'refused', 'cancelled', 'canceled'];
// What api/v1/ota said last: the jobs of both firmwares and the folder's images.
let ota = { jobs: [], images: [] };
let lastSnapshot = null;

// Bays in depth-first mesh order, each with its depth; a bay whose parent is not a bay (the
// root's parent is the router) starts a tree, a cycle is broken where it is found.
function meshOrder(bays) {
  const byKey = new Map(bays.map((b) => [macKey(b.mac || b.dev), b]));
  const parentOf = (b) => { const p = macKey(b.mesh_parent); return p && byKey.has(p) && p !== macKey(b.mac || b.dev) ? p : null; };
  const sorted = [...bays].sort((a, b) => (a.mesh_layer ?? 99) - (b.mesh_layer ?? 99) || a.name.localeCompare(b.name));
  const out = [];
  const placed = new Set();
  const visit = (bay, depth) => {
    const key = macKey(bay.mac || bay.dev);
    if (placed.has(key)) return;
    placed.add(key);
    out.push({ bay, depth });
    for (const child of sorted) if (parentOf(child) === key) visit(child, depth + 1);
  };
  for (const bay of sorted) if (!parentOf(bay)) visit(bay, 0);
  for (const bay of sorted) visit(bay, 0);
  return out;
}

// "3.5" -> [3, 5]; compares ESP32 versions.
const esp32Version = (v) => String(v || '').split('.').map((x) => parseInt(x, 10) || 0);
const newer = (a, b) => { const [x, y] = [esp32Version(a), esp32Version(b)]; return x[0] - y[0] || (x[1] || 0) - (y[1] || 0); };

// The bay's running job: from api/v1/ota (both firmwares), else the snapshot's.
function runningJob(bay) {
  // An ESP32 job of a board may name its bays as a list.
  const mine = (j) => j.bay === bay.dev || (Array.isArray(j.bays) && j.bays.includes(bay.dev));
  const fromOta = ota.jobs.filter((j) => mine(j) && !FINISHED.includes(j.state));
  if (fromOta.length) return fromOta[fromOta.length - 1];
  const job = bay.firmware_job;
  return job && !FINISHED.includes(job.state) ? job : null;
}

function installButton(bay, cls, label, image) {
  const button = el('button', 'install ' + cls, label);
  button.type = 'button';
  button.title = image;
  button.addEventListener('click', async () => {
    const done = await write('POST', bayPath(bay.dev) + '/firmware', { image, force: false }, 'Install of ' + image + ' queued');
    if (done) loadOta();
  });
  return button;
}

function fleetFirmware(bay) {
  const td = el('td', 'firmware');
  const job = runningJob(bay);
  if (job) {
    const pct = job.progress_pct ?? job.percent;
    const box = el('div', 'job');
    box.dataset.job = job.id;
    const bar = el('div', 'job-progress');
    bar.setAttribute('role', 'progressbar');
    bar.setAttribute('aria-valuemin', '0');
    bar.setAttribute('aria-valuemax', '100');
    const fill = el('div', 'fill');
    if (pct !== null && pct !== undefined) {
      bar.setAttribute('aria-valuenow', String(pct));
      fill.style.width = pct + '%';
    }
    bar.append(fill);
    const label = (job.kind === 'esp32' ? 'ESP32 ' : 'controller ') + job.state.replace(/_/g, ' ') +
      (pct !== null && pct !== undefined ? ' ' + pct + '%' : '');
    const cancel = el('button', 'cancel ghost small', 'Cancel');
    cancel.type = 'button';
    cancel.addEventListener('click', async () => {
      const done = await write('DELETE', 'api/v1/ota/' + encodeURIComponent(job.id), undefined, 'Job ' + job.id + ' cancelled');
      if (done) loadOta();
    });
    box.append(el('span', 'job-state', label), bar, cancel);
    td.append(box);
    return td;
  }
  const latest = bay.avr_latest;
  if (latest && bay.avr_firmware !== null && bay.avr_firmware !== undefined && latest.version > bay.avr_firmware) {
    td.append(installButton(bay, 'install-avr', 'Install controller v' + latest.version, latest.file));
  }
  const esp = ota.images
    .filter((i) => i.kind === 'esp32' && bay.board && i.board === bay.board)
    .sort((a, b) => newer(b.version, a.version))[0];
  if (esp && bay.firmware && newer(esp.version, bay.firmware) > 0) {
    td.append(installButton(bay, 'install-esp32', 'Install ESP32 ' + esp.version, esp.file));
  }
  if (!td.children.length) td.textContent = latest || esp ? 'up to date' : '\u2013';
  const last = bay.firmware_job;
  if (last && last.state !== 'succeeded') td.title = 'last job: ' + last.state + (last.error ? ': ' + JSON.stringify(last.error) : '');
  return td;
}

function renderFleet(s) {
  lastSnapshot = s;
  const known = (v, suffix) => (v === null || v === undefined ? '\u2013' : v + (suffix || ''));
  const rows = meshOrder(s.bays).map(({ bay, depth }) => {
    const tr = el('tr');
    tr.dataset.dev = bay.dev;
    tr.dataset.depth = String(depth);
    const seen = bay.last_heard_ms ? new Date(bay.last_heard_ms).toLocaleTimeString([], { hourCycle: 'h23' }) : '\u2013';
    const name = el('td', 'tree-cell');
    name.style.paddingLeft = (8 + depth * 20) + 'px';
    if (depth) name.append(el('span', 'branch', '\u2514'));
    name.append(el('span', 'dot' + (bay.online ? ' on' : '')), el('span', 'name', bay.name));
    if (depth === 0 && bay.mesh_layer === 1) name.append(el('span', 'pill root', 'root'));
    tr.append(name, el('td', '', known(bay.board)), el('td', '', known(bay.firmware)),
      el('td', '', known(bay.avr_firmware)), el('td', '', known(bay.mesh_layer)),
      el('td', 'mono', known(bay.mesh_parent)), el('td', '', known(bay.rssi_dbm, ' dBm')),
      el('td', '', known(bay.mesh_latency_ms, ' ms')), el('td', '', seen), fleetFirmware(bay));
    return tr;
  });
  $('fleet').tBodies[0].replaceChildren(...rows);
}

// The jobs and images; polled faster while a job runs (the stream carries the snapshot's).
let otaTimer = 0;
async function loadOta() {
  clearTimeout(otaTimer);
  try {
    const res = await fetch('api/v1/ota');
    if (res.ok) {
      const answer = await res.json();
      ota = { jobs: answer.jobs || [], images: answer.images || [] };
      if (lastSnapshot) renderFleet(lastSnapshot);
    }
  } catch (e) { /* the stream's status pill tells the operator */ }
  const running = ota.jobs.some((j) => !FINISHED.includes(j.state));
  otaTimer = setTimeout(loadOta, running ? 1000 : 10000);
}

// ---------- 24 h chart ----------
const SERIES = [
  { key: 'pv_power_w', label: 'PV', color: '--pv' },
  { key: 'ev_power_w', label: 'Cars', color: '--ev' },
  { key: 'grid_power_w', label: 'Grid', color: '--grid' },
  { key: 'surplus_w', label: 'Surplus', color: '--surplus', dash: [5, 4] },
];
let samples = [];

function drawChart() {
  const canvas = $('chart');
  const css = getComputedStyle(document.documentElement);
  const color = (name) => css.getPropertyValue(name).trim();
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth;
  const h = canvas.clientHeight;
  if (!w || !h) return;
  canvas.width = Math.round(w * ratio);
  canvas.height = Math.round(h * ratio);
  const g = canvas.getContext('2d');
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, w, h);
  const left = 58, right = 10, top = 10, bottom = 24;
  const now = Date.now();
  const t0 = now - 24 * 3600 * 1000;
  let lo = 0, hi = 1000;
  for (const s of samples) for (const { key } of SERIES) {
    const v = s[key];
    if (v !== null && v !== undefined) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  }
  const stepKw = [0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500].find((st) => (hi - lo) / 1000 / st <= 5) || 1000;
  lo = Math.floor(lo / 1000 / stepKw) * stepKw * 1000;
  hi = Math.ceil(hi / 1000 / stepKw) * stepKw * 1000;
  const x = (t) => left + (w - left - right) * (t - t0) / (now - t0);
  const y = (v) => top + (h - top - bottom) * (hi - v) / (hi - lo || 1);
  g.font = '11px system-ui, sans-serif';
  g.fillStyle = color('--muted');
  g.strokeStyle = color('--line');
  g.lineWidth = 1;
  g.textAlign = 'right';
  g.textBaseline = 'middle';
  for (let v = lo; v <= hi + 1; v += stepKw * 1000) {
    g.beginPath(); g.moveTo(left, y(v)); g.lineTo(w - right, y(v)); g.stroke();
    g.fillText((v / 1000).toFixed(stepKw < 1 ? 1 : 0) + ' kW', left - 6, y(v));
  }
  g.textAlign = 'center';
  g.textBaseline = 'top';
  const hour = 3600 * 1000;
  const everyH = w < 500 ? 6 : 3;
  for (let t = Math.ceil(t0 / hour) * hour; t <= now; t += hour) {
    const d = new Date(t);
    if (d.getHours() % everyH) continue;
    g.fillText(String(d.getHours()).padStart(2, '0') + ':00', x(t), h - bottom + 6);
  }
  for (const serie of SERIES) {
    const points = samples.filter((s) => s[serie.key] !== null && s[serie.key] !== undefined && s.at_ms >= t0);
    g.strokeStyle = color(serie.color);
    g.fillStyle = color(serie.color);
    g.lineWidth = 2;
    g.setLineDash(serie.dash || []);
    g.beginPath();
    points.forEach((s, i) => {
      const px = x(s.at_ms + 30000), py = y(s[serie.key]);
      if (i === 0) g.moveTo(px, py); else g.lineTo(px, py);
    });
    g.stroke();
    g.setLineDash([]);
    // A lone point would draw nothing: show the last one as a dot.
    const last = points[points.length - 1];
    if (last) { g.beginPath(); g.arc(x(last.at_ms + 30000), y(last[serie.key]), 3, 0, 2 * Math.PI); g.fill(); }
  }
  const legend = $('chart-legend');
  if (!legend.children.length) {
    for (const serie of SERIES) {
      const sw = el('span', 'sw');
      sw.style.background = `var(${serie.color})`;
      legend.append(sw, el('span', '', serie.label));
    }
    legend.append(el('span', 'muted since'));
  }
  const first = samples[0];
  legend.querySelector('.since').textContent = first && first.at_ms > t0
    ? '\u00b7 recorded since ' + new Date(first.at_ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
    : '';
}

async function loadHistory() {
  try {
    const res = await fetch('api/v1/history');
    if (res.ok) { samples = await res.json(); drawChart(); }
  } catch (e) { /* the stream's status pill tells the operator */ }
}

// ---------- live ----------
function render(s) {
  document.title = `${s.name} \u00b7 ctrl22`;
  $('site-name').textContent = s.name;
  const mesh = $('mesh');
  mesh.textContent = s.mesh_connected ? 'mesh up' : 'mesh down';
  mesh.className = 'pill ' + (s.mesh_connected ? 'ok' : 'bad');
  $('strategy').textContent = 'strategy: ' + s.strategy;
  renderFlow(s);
  renderPhases(s);
  renderBays(s);
  renderFleet(s);
  $('updated').textContent = 'updated ' + new Date(s.at_ms).toLocaleTimeString([], { hourCycle: 'h23' });
}

function setLive(text, cls) {
  const live = $('live');
  live.textContent = text;
  live.className = 'pill ' + cls;
}

function connect() {
  const source = new EventSource('api/v1/stream');
  source.addEventListener('snapshot', (ev) => {
    lastEventAt = Date.now();
    setLive('live', 'ok');
    render(JSON.parse(ev.data));
  });
  source.onerror = () => setLive('reconnecting', 'bad');
}

// The parts of the page that show the site, hidden until a login with protect_reads.
function showSite(shown) {
  $('login').hidden = shown;
  for (const id of ['main', 'live', 'mesh', 'strategy', 'access', 'footer']) $(id).hidden = !shown;
}

function startLive() {
  showSite(true);
  setInterval(() => {
    if (lastEventAt && Date.now() - lastEventAt > 5000) setLive('stale', 'warn');
  }, 2000);
  setInterval(loadHistory, 30000);
  new ResizeObserver(drawChart).observe($('chart'));
  connect();
  loadHistory();
  loadOta();
}

// protect_reads: nothing to show before a login.
function showLogin() {
  showSite(false);
  const input = $('login-token');
  input.focus();
  $('login-form').onsubmit = async (ev) => {
    ev.preventDefault();
    const error = await login(input.value.trim());
    input.value = '';
    $('login-error').textContent = error;
    if (!error) { $('login-form').onsubmit = null; startLive(); }
  };
}

$('logout').addEventListener('click', async () => {
  try { await fetch('api/v1/logout', { method: 'POST' }); } catch (e) { /* reloaded below */ }
  location.reload();
});

(async () => {
  try {
    await fetchAuth();
  } catch (e) {
    setLive('no bridge', 'bad');
    toast('The bridge cannot be reached: ' + e.message, true);
    return;
  }
  if (access.protect_reads && !access.authenticated) showLogin(); else startLive();
})();
