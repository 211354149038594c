// relayd dashboard: reads GET /v1/events (server-sent events through
// fetch(), so the admin token can go in the Authorization header), renders
// each snapshot, and POSTs the rollout buttons to the admin API. Every text
// from the network is set with textContent, never parsed as HTML.
'use strict';

const TOKEN_KEY = 'relayd.adminToken';
const WINDOW_MS = 10 * 60 * 1000; // plots keep the last 10 minutes
const STALL_MS = 10 * 1000; // no snapshot for that long: reconnect
const MAX_BUFFER = 64 << 20; // a stream line longer than this is refused
const MAX_TREE_ROWS = 1000; // relays listed; a bigger tree says how many more

const $ = (id) => document.getElementById(id);

let token = sessionStorage.getItem(TOKEN_KEY) || '';
let last = null; // the newest snapshot
const series = { hitNode: [], hitTree: [], wan: [] }; // [t ms, value|null]

function authHeaders(extra) {
  const h = Object.assign({}, extra || {});
  if (token) h.Authorization = 'Bearer ' + token;
  return h;
}

// ---- connection ----

function setConn(text, cls) {
  const c = $('conn');
  c.textContent = text;
  c.className = 'conn' + (cls ? ' ' + cls : '');
}

function askToken(msg) {
  $('main').hidden = true;
  $('token-section').hidden = false;
  $('token-msg').textContent = msg;
  setConn('needs the admin token', 'down');
  $('token-input').focus();
}

$('token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  token = $('token-input').value.trim();
  $('token-input').value = '';
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  $('token-section').hidden = true;
  connect();
});

let retryTimer = null;
function retry() {
  clearTimeout(retryTimer);
  retryTimer = setTimeout(connect, 2000);
}

async function connect() {
  clearTimeout(retryTimer);
  const ctl = new AbortController();
  let resp;
  try {
    resp = await fetch('/v1/events', { headers: authHeaders(), cache: 'no-store', signal: ctl.signal });
  } catch (e) {
    setConn('disconnected: ' + e.message, 'down');
    retry();
    return;
  }
  if (resp.status === 401) {
    ctl.abort();
    askToken(token ? 'The admin port refused this token: give the right one.' : 'This admin port needs its token.');
    return;
  }
  if (!resp.ok) {
    ctl.abort();
    setConn('stream refused: ' + resp.status + ' ' + (await errorText(resp)), 'down');
    retry();
    return;
  }
  $('token-section').hidden = true;
  $('main').hidden = false;
  let watchdog = setTimeout(() => ctl.abort(), STALL_MS);
  try {
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (onEvent(block)) {
          clearTimeout(watchdog);
          watchdog = setTimeout(() => ctl.abort(), STALL_MS);
        }
      }
      if (buf.length > MAX_BUFFER) throw new Error('event too large');
    }
    setConn('stream ended; reconnecting', 'down');
  } catch (e) {
    setConn('disconnected: ' + e.message + '; reconnecting', 'down');
  } finally {
    clearTimeout(watchdog);
  }
  retry();
}

async function errorText(resp) {
  try {
    const doc = await resp.json();
    return doc.error || doc.code || '';
  } catch (e) {
    return '';
  }
}

// onEvent handles one SSE block; it reports whether it was a snapshot.
function onEvent(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  if (event !== 'snapshot' || data.length === 0) return false;
  let snap;
  try {
    snap = JSON.parse(data.join('\n'));
  } catch (e) {
    return false;
  }
  render(snap);
  return true;
}

// ---- rendering helpers ----

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function cell(tr, field, text, cls) {
  const td = el('td', text, cls);
  td.dataset.field = field;
  tr.appendChild(td);
  return td;
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function pct(x) {
  return (100 * x).toFixed(1) + ' %';
}

function bytes(n) {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return (i === 0 ? v.toFixed(0) : v.toFixed(1)) + ' ' + u[i];
}

function age(t, now) {
  if (!t) return '';
  const s = Math.max(0, Math.round((now - Date.parse(t)) / 1000));
  if (s < 120) return s + 's';
  if (s < 7200) return Math.round(s / 60) + 'm';
  if (s < 172800) return Math.round(s / 3600) + 'h';
  return Math.round(s / 86400) + 'd';
}

// ---- render ----

function render(snap) {
  last = snap;
  const now = Date.parse(snap.time);
  setConn('live · ' + new Date(now).toLocaleTimeString(), 'live');
  const st = snap.status || {};
  $('node').textContent = [st.node, st.group && 'group ' + st.group, st.mode, st.version].filter(Boolean).join(' · ');
  $('sum-generation').textContent = st.generation !== undefined ? st.generation : '–';
  renderTree(snap.tree, now);
  renderRollout(snap.rollout, now);
  renderCompliance(snap.compliance, now);
  renderCounters(snap, now);
}

function flatTree(g, depth, out) {
  if (!g || depth > 64) return out;
  for (const m of g.members || []) out.push({ group: g.group, depth: depth, m: m });
  for (const c of g.children || []) flatTree(c, depth + 1, out);
  return out;
}

function renderTree(tree, now) {
  const all = flatTree(tree, 0, []);
  $('sum-relays').textContent = all.length;
  const rows = all.slice(0, MAX_TREE_ROWS);
  const more = all.length - rows.length;
  const body = $('tree-table').tBodies[0];
  fill(body, rows.map((r) => {
    const m = r.m;
    const tr = el('tr');
    tr.dataset.group = r.group;
    tr.dataset.node = m.node;
    cell(tr, 'group', r.group, 'indent' + Math.min(r.depth, 3));
    cell(tr, 'node', m.node);
    cell(tr, 'mode', m.mode);
    const health = m.health + (m.problem ? ': ' + m.problem : '');
    cell(tr, 'health', health, 'h-' + String(m.health).replace(/\s+/g, '-'));
    cell(tr, 'generation', m.generation, 'num');
    cell(tr, 'lag', m.lag + (m.ahead ? ' (ahead)' : ''), 'num');
    if (m.expired_since) cell(tr, 'metadata', 'EXPIRED since ' + m.expired_since, 'expired');
    else cell(tr, 'metadata', m.metadata_age ? 'verified ' + m.metadata_age + ' ago' : '');
    cell(tr, 'age', m.age || 'first hand');
    cell(tr, 'agents', m.agents, 'num');
    cell(tr, 'hits', m.cache ? m.cache.hits : '', 'num');
    cell(tr, 'misses', m.cache ? m.cache.misses : '', 'num');
    return tr;
  }));
  if (more > 0) {
    const td = el('td', '… and ' + more + ' more relays: relayd tree --json shows them all', 'muted');
    td.colSpan = 11;
    body.appendChild(el('tr')).appendChild(td);
  }
}

function ringGate(g) {
  if (!g) return '';
  return '≥' + g.min_agents + ' agents, ≥' + pct(g.success) + ' installed, ≤' + pct(g.max_failures) + ' failed';
}

function renderRollout(ro, now) {
  $('rollout-none').hidden = !!ro;
  $('rollout-body').hidden = !ro;
  if (!ro) return;
  const gates = ro.gates || {};
  $('rollout-plan').textContent = ro.plan || gates.plan || '';
  const state = $('rollout-state');
  if (ro.halted) {
    state.textContent = 'HALTED: ' + (ro.reason || 'no reason given');
    state.className = 'state halted';
  } else {
    const newest = gates.newest ? gates.newest.version : 0;
    state.textContent = 'running · newest generation ' + newest + (ro.signed && ro.signed.version ? ' · gates v' + ro.signed.version : '');
    state.className = 'state running';
  }
  // The origin's rings carry their gate and counts; a relay shows the
  // gates it holds.
  const rings = ro.rings && ro.rings.length ? ro.rings : (gates.rings || []).map((r) => ({
    name: r.name, groups: r.groups, open: r.open ? r.open.version : 0, since: r.since,
  }));
  fill($('rollout-rings').tBodies[0], rings.map((r) => {
    const tr = el('tr');
    tr.dataset.ring = r.name;
    const c = r.counts || {};
    cell(tr, 'ring', r.name);
    cell(tr, 'groups', (r.groups || []).join(' '));
    cell(tr, 'open', r.open ? r.open : 'not yet', 'num');
    cell(tr, 'since', r.since ? age(r.since, now) + ' ago' : '');
    cell(tr, 'soak', r.soak || '');
    cell(tr, 'gate', ringGate(r.gate));
    cell(tr, 'reporting', c.reporting !== undefined ? c.reporting : '', 'num');
    cell(tr, 'installed', c.installed !== undefined ? c.installed : '', 'num');
    cell(tr, 'failed', c.failed !== undefined ? c.failed + (c.top_reason ? ' (' + c.top_reason + ')' : '') : '', c.failed ? 'num bad' : 'num');
    cell(tr, 'met', r.met === undefined ? '' : r.met ? (r.met_since ? 'yes, for ' + age(r.met_since, now) : 'yes') : 'no');
    cell(tr, 'why', r.why || '');
    return tr;
  }));
  const sel = $('promote-ring');
  const names = rings.map((r) => r.name);
  const have = Array.from(sel.options).slice(1).map((o) => o.value);
  if (names.join('\n') !== have.join('\n')) {
    const keep = sel.value;
    sel.replaceChildren(el('option', 'the next one'), ...names.map((n) => el('option', n)));
    sel.options[0].value = '';
    sel.value = names.includes(keep) ? keep : '';
  }
  $('rollout-controls').hidden = !!ro.read_only;
  $('rollout-readonly').hidden = !ro.read_only;
  $('halt').disabled = !!ro.halted;
  $('resume').disabled = !ro.halted;
}

function topReason(c) {
  return c.reasons && c.reasons.length ? c.reasons[0].reason + ' ×' + c.reasons[0].count : '';
}

function countCells(tr, c) {
  cell(tr, 'agents', c.agents, 'num');
  cell(tr, 'on_target', c.on_target, 'num');
  cell(tr, 'behind', c.behind, 'num');
  cell(tr, 'failed', c.failed, c.failed ? 'num bad' : 'num');
  cell(tr, 'not_reporting', c.not_reporting, 'num');
  cell(tr, 'oldest', c.oldest_age_seconds ? c.oldest_age_seconds + 's' : '');
  cell(tr, 'reason', topReason(c));
}

function renderCompliance(co, now) {
  $('compliance-none').hidden = !!co;
  $('compliance-body').hidden = !co;
  if (!co) {
    $('sum-ontarget').textContent = '–';
    return;
  }
  const t = co.total || {};
  $('sum-ontarget').textContent = (t.on_target || 0) + ' / ' + (t.agents || 0);
  $('compliance-newest').textContent = 'newest generation ' + co.newest;
  $('compliance-rings').hidden = !(co.rings && co.rings.length);
  fill($('compliance-rings').tBodies[0], (co.rings || []).map((r) => {
    const tr = el('tr');
    tr.dataset.ring = r.name;
    cell(tr, 'ring', r.name);
    cell(tr, 'open', r.open ? r.open : 'not yet', 'num');
    cell(tr, 'groups', r.groups, 'num');
    countCells(tr, r);
    return tr;
  }));
  fill($('compliance-groups').tBodies[0], (co.groups || []).map((g) => {
    const tr = el('tr');
    tr.dataset.group = g.name;
    cell(tr, 'group', g.name);
    cell(tr, 'ring', g.ring || '');
    cell(tr, 'target', g.target, 'num');
    cell(tr, 'relays', g.relays, 'num');
    countCells(tr, g);
    return tr;
  }));
}

// ---- counters and plots ----

// Each point is a rate over the last RATE_MS of counter samples, so a line
// stays continuous while traffic flows (the tree's counters move only when
// a relay reports) and breaks when there is none.
const RATE_MS = 30 * 1000;
const samples = []; // {t, node, tree}: the counters of each snapshot, WINDOW_MS long

function ratio(dh, dm) {
  return dh + dm > 0 ? dh / (dh + dm) : null;
}

function push(arr, t, v) {
  arr.push([t, v]);
  while (arr.length && arr[0][0] < t - WINDOW_MS) arr.shift();
}

function renderCounters(snap, now) {
  const c = snap.counters || {};
  const node = c.node;
  const tree = c.tree || { hits: 0, misses: 0 };
  if (node) {
    $('sum-hit').textContent = node.hits + node.misses ? pct(node.hits / (node.hits + node.misses)) : '–';
    $('sum-wan').textContent = bytes(Math.max(0, node.bytes_served - node.upstream_bytes));
  } else {
    $('sum-hit').textContent = tree.hits + tree.misses ? pct(tree.hits / (tree.hits + tree.misses)) + ' (tree)' : '–';
    $('sum-wan').textContent = 'no cache here';
  }
  if (samples.length && now <= samples[samples.length - 1].t) return;
  samples.push({ t: now, node: node, tree: tree });
  while (samples.length && samples[0].t < now - WINDOW_MS) samples.shift();
  // The oldest sample within RATE_MS (or the oldest kept).
  let base = samples[0];
  for (const s of samples) {
    if (s.t >= now - RATE_MS) {
      base = s;
      break;
    }
  }
  if (base.t < now) {
    if (node && base.node) {
      push(series.hitNode, now, ratio(node.hits - base.node.hits, node.misses - base.node.misses));
      const saved = (node.bytes_served - base.node.bytes_served) - (node.upstream_bytes - base.node.upstream_bytes);
      push(series.wan, now, Math.max(0, saved) / ((now - base.t) / 1000));
    }
    push(series.hitTree, now, ratio(tree.hits - base.tree.hits, tree.misses - base.tree.misses));
  }
  const from = Math.max(now - WINDOW_MS, samples[0].t);
  plot($('plot-hit'), from, now, [[series.hitNode, 'node'], [series.hitTree, 'tree']], 1, pct);
  const wanMax = Math.max(1, ...series.wan.map((p) => p[1] || 0));
  plot($('plot-wan'), from, now, [[series.wan, 'wan']], wanMax, (v) => bytes(v) + '/s');
  const lastOf = (a) => (a.length ? a[a.length - 1][1] : null);
  const h = lastOf(series.hitNode) !== null ? lastOf(series.hitNode) : lastOf(series.hitTree);
  $('plot-hit-now').textContent = h === null ? '' : 'last 30 s: ' + pct(h);
  $('plot-wan-now').textContent = node ? 'last 30 s: ' + bytes(lastOf(series.wan) || 0) + '/s' : '(this node keeps no cache)';
}

const SVG = 'http://www.w3.org/2000/svg';
const W = 600;
const H = 120;

function svgEl(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  return e;
}

// plot draws each series (a gap where a value is null) on [from, now]
// (at most the last 10 minutes: since the page opened, at first) ×
// [0, max], with the max's label and the span's.
function plot(svg, from, now, list, max, fmt) {
  const span = Math.max(now - from, 1000);
  const kids = [svgEl('line', { class: 'grid', x1: 0, y1: H / 2, x2: W, y2: H / 2 })];
  const top = svgEl('text', { x: 4, y: 11 });
  top.textContent = fmt(max);
  const left = svgEl('text', { x: 4, y: H - 3 });
  left.textContent = span >= 120000 ? '−' + Math.round(span / 60000) + ' min' : '−' + Math.round(span / 1000) + ' s';
  kids.push(top, left);
  for (const [pts, cls] of list) {
    let d = '';
    let pen = false;
    for (const [t, v] of pts) {
      if (v === null || v === undefined || t < from) {
        pen = false;
        continue;
      }
      const x = ((t - from) / span) * W;
      const y = H - 2 - (Math.min(v, max) / max) * (H - 16);
      d += (pen ? 'L' : 'M') + x.toFixed(1) + ' ' + y.toFixed(1);
      pen = true;
    }
    if (d) {
      const p = svgEl('path', { class: 'series ' + cls, d: d });
      p.dataset.points = String(pts.filter((q) => q[1] !== null).length);
      kids.push(p);
    }
  }
  svg.replaceChildren(...kids);
}

// ---- rollout buttons ----

async function post(path, body) {
  const msg = $('rollout-msg');
  msg.className = 'msg';
  msg.textContent = 'sending…';
  let resp;
  try {
    resp = await fetch(path, {
      method: 'POST',
      headers: authHeaders({ 'Content-Type': 'application/json' }),
      body: JSON.stringify(body || {}),
      cache: 'no-store',
    });
  } catch (e) {
    msg.className = 'msg error';
    msg.textContent = 'failed: ' + e.message;
    return;
  }
  if (resp.status === 401) {
    askToken('The admin port refused this token: give the right one.');
    return;
  }
  if (!resp.ok) {
    msg.className = 'msg error';
    msg.textContent = 'refused (' + resp.status + '): ' + (await errorText(resp));
    return;
  }
  msg.textContent = 'done: ' + path.replace('/v1/rollout/', '');
}

$('promote').addEventListener('click', () => {
  const ring = $('promote-ring').value;
  post('/v1/rollout/promote', ring ? { ring: ring } : {});
});
$('halt').addEventListener('click', () => {
  const reason = $('halt-reason').value.trim() || 'halted from the dashboard';
  post('/v1/rollout/halt', { reason: reason });
});
$('resume').addEventListener('click', () => post('/v1/rollout/resume', {}));

connect();
