// livefeed console. Plain JavaScript, no libraries: every number comes from
// this server's /v1 API (with the bearer token when one is set) or its
// /metrics; charts are small SVGs drawn here. Pages: live streams, a user's
// recommendations with explain, text search, pipeline health, features.
'use strict';

// ---- DOM helpers ---------------------------------------------------------

const $ = (sel, root = document) => root.querySelector(sel);

// h builds an element: attrs may hold class, text, on<event> handlers and
// plain attributes; children are nodes, strings, arrays or null.
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, kids);
  return el;
}

const SVGNS = 'http://www.w3.org/2000/svg';
function s(tag, attrs, ...kids) {
  const el = document.createElementNS(SVGNS, tag);
  setAttrs(el, attrs);
  append(el, kids);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, kids) {
  for (const k of kids.flat(Infinity)) {
    if (k === null || k === undefined || k === false) continue;
    el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
}

function clear(el, ...kids) {
  el.replaceChildren();
  append(el, kids);
  return el;
}

// ---- numbers --------------------------------------------------------------

const nf0 = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const nf1 = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });
const nf2 = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });
const nf3 = new Intl.NumberFormat('en-US', { maximumSignificantDigits: 3 });

// fmt prints a value compactly: integers with separators, small values with
// three significant digits, huge ones in k/M, the ±1.8e308 of an infinite
// formula result as ±∞.
function fmt(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (Math.abs(v) >= 1e300) return v > 0 ? '∞' : '−∞';
  const a = Math.abs(v);
  if (a >= 1e6) return nf2.format(v / 1e6) + 'M';
  if (a >= 1e4) return nf1.format(v / 1e3) + 'k';
  if (Number.isInteger(v)) return nf0.format(v);
  if (a >= 100) return nf1.format(v);
  return nf3.format(v);
}

function fmtSeconds(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (v < 0.01) return nf2.format(v * 1000) + ' ms';
  if (v < 1) return nf0.format(v * 1000) + ' ms';
  if (v < 120) return nf1.format(v) + ' s';
  if (v < 7200) return nf1.format(v / 60) + ' min';
  return nf1.format(v / 3600) + ' h';
}

// ---- API access -------------------------------------------------------------

class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const TOKEN_KEY = 'livefeed.token';
const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) || '',
  set: (t) => (t ? sessionStorage.setItem(TOKEN_KEY, t) : sessionStorage.removeItem(TOKEN_KEY)),
};

// askToken opens the token dialog once for every caller waiting on it.
let tokenAsk = null;
function askToken(reason) {
  if (tokenAsk) return tokenAsk;
  const dlg = $('#token-dialog');
  $('#token-reason').textContent = reason;
  $('#token-input').value = '';
  tokenAsk = new Promise((resolve) => {
    dlg.addEventListener('close', () => {
      token.set($('#token-input').value.trim());
      tokenAsk = null;
      resolve();
    }, { once: true });
  });
  if (!dlg.open) dlg.showModal();
  return tokenAsk;
}

// api calls a /v1 route with the token; a 401 asks for the token and
// retries. Errors are APIError with the server's message.
async function api(path, { method = 'GET', body } = {}) {
  for (let attempt = 0; attempt < 3; attempt++) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const t = token.get();
    if (t) headers.Authorization = 'Bearer ' + t;
    const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await resp.text();
    if (resp.status === 401) {
      await askToken(t ? 'The server refused that token. Enter the API token (LIVEFEED_API_TOKEN).' :
        'This server requires a bearer token for its /v1 API (LIVEFEED_API_TOKEN).');
      continue;
    }
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { /* not JSON */ }
    if (!resp.ok) throw new APIError(resp.status, (data && data.error) || text || resp.statusText);
    return data;
  }
  throw new APIError(401, 'no valid API token');
}

function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '' || v === false) continue;
    u.set(k, String(v));
  }
  return u.toString();
}

function showError(el, err) {
  if (!err) { el.hidden = true; return; }
  el.hidden = false;
  el.textContent = err.status ? `${err.status}: ${err.message}` : String(err.message || err);
}

// ---- charts -----------------------------------------------------------------

// sparkline draws values as a line with its area and last point; flat
// dashes when there are fewer than two points.
// With stretch, the line fills its container's width (no end dot, which
// would be distorted).
function sparkline(values, { width = 72, height = 22, color = '', stretch = false } = {}) {
  const svg = s('svg', { class: 'spark ' + color + (stretch ? ' stretch' : ''), width: stretch ? '100%' : width, height,
    viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: stretch ? 'none' : null });
  const vals = values.filter((v) => Number.isFinite(v) && Math.abs(v) < 1e300);
  if (vals.length < 2) {
    svg.append(s('line', { class: 'flat', x1: 0, x2: width, y1: height - 2, y2: height - 2 }));
    return svg;
  }
  let lo = Math.min(...vals), hi = Math.max(...vals);
  if (hi === lo) { hi += 1; lo -= lo === 0 ? 0 : 1; }
  const pad = 2;
  const x = (i) => (i / (vals.length - 1)) * width;
  const y = (v) => height - pad - ((v - lo) / (hi - lo)) * (height - 2 * pad);
  const pts = vals.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`);
  svg.append(
    s('path', { class: 'area', d: `M0,${height} L${pts.join(' L')} L${width},${height} Z` }),
    s('polyline', { class: 'line', points: pts.join(' ') }),
    stretch ? null : s('circle', { class: 'dot', cx: x(vals.length - 1), cy: y(vals[vals.length - 1]), r: 2 }),
  );
  const last = vals[vals.length - 1];
  svg.append(s('title', { text: `last ${fmt(last)} · min ${fmt(Math.min(...vals))} · max ${fmt(Math.max(...vals))} · ${vals.length} points` }));
  return svg;
}

// bars draws labelled horizontal bars; rows are {label, value, text?, color?}.
function bars(rows, { max } = {}) {
  if (!rows.length) return h('p', { class: 'hint', text: 'nothing yet' });
  const top = max || Math.max(...rows.map((r) => r.value), 1e-9);
  return h('div', { class: 'bars' }, rows.map((r) => {
    const fill = h('div', { class: 'fill ' + (r.color || '') });
    fill.style.width = `${Math.max(0, Math.min(100, (r.value / top) * 100))}%`;
    return [
      h('div', { class: 'l', title: r.label, text: r.label }),
      h('div', { class: 'track' }, fill),
      h('div', { class: 'v', text: r.text !== undefined ? r.text : fmt(r.value) }),
    ];
  }));
}

function scorebar(value, max) {
  const fill = h('div', { class: 'fill' });
  fill.style.width = `${max > 0 ? Math.max(0, Math.min(100, (value / max) * 100)) : 0}%`;
  return h('div', { class: 'scorebar' }, h('div', { class: 'track' }, fill), h('span', { class: 'v', text: fmt(value) }));
}

// histogram draws a distribution's bins with min and max under the axis.
function histogram(d, { width = 310, height = 74 } = {}) {
  const svg = s('svg', { class: 'hist', width, height: height + 14, viewBox: `0 0 ${width} ${height + 14}` });
  if (!d.count) {
    svg.append(s('text', { class: 'axis', x: 0, y: height / 2, text: 'no values' }));
    return svg;
  }
  const bins = d.bins;
  const top = Math.max(...bins.map((b) => b.count), 1);
  const bw = width / bins.length;
  bins.forEach((b, i) => {
    const bh = b.count ? Math.max(1.5, (b.count / top) * (height - 4)) : 0;
    const r = s('rect', { class: 'bar', x: (i * bw + 1).toFixed(1), y: (height - bh).toFixed(1), width: Math.max(1, bw - 2).toFixed(1), height: bh.toFixed(1), rx: 1.5 });
    r.append(s('title', { text: `${fmt(b.lo)} – ${fmt(b.hi)}: ${fmt(b.count)}` }));
    svg.append(r);
  });
  svg.append(
    s('line', { x1: 0, x2: width, y1: height + 0.5, y2: height + 0.5 }),
    s('text', { class: 'axis', x: 0, y: height + 12, text: fmt(d.min) }),
    s('text', { class: 'axis', x: width, y: height + 12, 'text-anchor': 'end', text: fmt(d.max) }),
  );
  return svg;
}

// compareChart draws a feature's drift (GET /v1/features/{entity}/{name}/
// distribution): per reference bin, and for nulls, the share of the
// reference (grey) beside the share of the current window (blue).
function compareChart(d, { width = 310, height = 74 } = {}) {
  const svg = s('svg', { class: 'cmp', width, height: height + 14, viewBox: `0 0 ${width} ${height + 14}` });
  if (!d.reference) {
    svg.append(s('text', { class: 'axis', x: 0, y: height / 2, text: 'no reference yet' }));
    return svg;
  }
  const rows = [{ label: 'null', cur: d.current.null_rate, ref: d.reference.null_rate }]
    .concat(d.bins.map((b) => ({ label: `${fmt(b.lo)} – ${fmt(b.hi)}`, cur: b.current, ref: b.reference })));
  const top = Math.max(...rows.map((r) => Math.max(r.cur, r.ref)), 1e-9);
  const bw = width / rows.length;
  rows.forEach((r, i) => {
    for (const [k, v, dx] of [['ref', r.ref, 0], ['cur', r.cur, bw / 2]]) {
      const bh = v ? Math.max(1.5, (v / top) * (height - 4)) : 0;
      const rect = s('rect', { class: k, x: (i * bw + dx + 0.5).toFixed(1), y: (height - bh).toFixed(1), width: Math.max(1, bw / 2 - 1).toFixed(1), height: bh.toFixed(1), rx: 1 });
      rect.append(s('title', { text: `${r.label}: ${k === 'cur' ? 'current' : 'reference'} ${nf1.format(100 * v)}%` }));
      svg.append(rect);
    }
  });
  svg.append(
    s('line', { x1: bw, x2: bw, y1: 0, y2: height, class: 'sep' }),
    s('line', { x1: 0, x2: width, y1: height + 0.5, y2: height + 0.5 }),
    s('text', { class: 'axis', x: 0, y: height + 12, text: 'null' }),
    s('text', { class: 'axis', x: width, y: height + 12, 'text-anchor': 'end', text: d.bins.length ? fmt(d.bins[d.bins.length - 1].hi) : '' }),
  );
  return svg;
}

// quantileText is a quantile of both sides of a distribution.
function quantileText(label, d, p) {
  const q = (w) => { const x = w && w.quantiles.find((x) => x.p === p); return x ? fmt(x.value) : '–'; };
  return h('span', null, label + ' ', h('b', { text: `${q(d.reference)} → ${q(d.current)}` }));
}

// driftClass is a drift level's pill colour.
const driftClass = { none: 'ok', moderate: 'warn', significant: 'bad' };

// ---- polling and pages ------------------------------------------------------

// poller runs fn now and every ms after it finishes, until stopped.
function poller(ms, fn) {
  let timer = null, stopped = false;
  const tick = async () => {
    if (stopped) return;
    try { await fn(); } catch (err) { /* fn shows its own errors */ }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

// The feature catalogue (GET /v1/features), fetched once for names and
// definitions; the features page refreshes its own copy.
let catalogPromise = null;
function catalog() {
  if (!catalogPromise) {
    catalogPromise = api('/v1/features?bins=1').catch((err) => { catalogPromise = null; throw err; });
  }
  return catalogPromise;
}
async function streamFeatureNames() {
  const c = await catalog();
  const ls = c.entities.find((e) => e.entity === 'livestream');
  return ls ? ls.features.map((f) => f.name) : [];
}

// ---- page: live streams -------------------------------------------------------

const Streams = {
  history: new Map(), // id -> {seen, score[], viewers[], f: {name: []}}
  prevRank: new Map(),
  selected: null,
  paused: false,
  last: null,
  HIST: 80,
  cols: ['chat_1m', 'bids_5m'],

  async init() {
    const sel = $('#st-rank');
    const add = (value, label) => sel.append(h('option', { value, text: label }));
    add('engagement', 'engagement (popular score)');
    add('viewers_now', 'viewers now');
    add('live_minutes', 'minutes live');
    add('__formula', 'formula…');
    try {
      const names = await streamFeatureNames();
      const group = h('optgroup', { label: 'features' }, names.map((n) => h('option', { value: n, text: n })));
      sel.insertBefore(group, sel.lastChild);
      this.cols = this.cols.filter((c) => names.includes(c));
      if (this.cols.length < 2) this.cols = names.slice(0, 2);
    } catch (err) { /* the board still ranks by the built-in variables */ }
    $('#st-col-a').textContent = this.cols[0] || '';
    $('#st-col-b').textContent = this.cols[1] || '';
    sel.addEventListener('change', () => {
      $('#st-formula-wrap').hidden = sel.value !== '__formula';
      this.prevRank.clear();
      this.refresh();
    });
    $('#st-formula').addEventListener('change', () => { this.prevRank.clear(); this.refresh(); });
    $('#st-k').addEventListener('change', () => this.refresh());
    $('#st-category').addEventListener('change', () => { this.prevRank.clear(); this.refresh(); });
    // One listener for the rows, which every poll replaces.
    $('#st-table tbody').addEventListener('click', (e) => {
      const tr = e.target.closest('tr[data-id]');
      if (!tr) return;
      this.selected = tr.dataset.id;
      for (const x of tr.parentNode.children) x.classList.toggle('sel', x.dataset.id === this.selected);
      this.renderDetail();
    });
    $('#st-pause').addEventListener('click', (e) => {
      this.paused = !this.paused;
      e.target.textContent = this.paused ? 'Resume' : 'Pause';
      e.target.classList.toggle('on', this.paused);
    });
  },

  formula() {
    const v = $('#st-rank').value;
    return v === '__formula' ? ($('#st-formula').value.trim() || 'engagement') : v;
  },

  start() { this.stopPoll = poller(1500, () => (this.paused ? null : this.refresh())); },
  stop() { if (this.stopPoll) this.stopPoll(); },

  async refresh() {
    const k = Number($('#st-k').value);
    const params = {
      // A user id no simulator or app uses: no taste, so the API answers
      // with the popular fallback, which the formula re-ranks.
      user_id: '~console', k, formula: this.formula(),
      overfetch: Math.max(1, Math.min(100, Math.floor(2000 / k))),
      category: $('#st-category').value,
    };
    let resp;
    try {
      resp = await api('/v1/recommendations?' + qs(params));
    } catch (err) {
      $('#st-meta').textContent = '';
      clear($('#st-meta'), h('span', { class: 'pill bad', text: `${err.status || ''} ${err.message}` }));
      return;
    }
    this.render(resp);
  },

  record(r, now) {
    let hst = this.history.get(r.livestream_id);
    if (!hst) { hst = { score: [], viewers: [], f: {} }; this.history.set(r.livestream_id, hst); }
    hst.seen = now;
    const push = (arr, v) => { arr.push(v); if (arr.length > this.HIST) arr.shift(); };
    push(hst.score, r.score);
    push(hst.viewers, r.viewers_now);
    for (const [name, v] of Object.entries(r.features || {})) push(hst.f[name] || (hst.f[name] = []), v);
    return hst;
  },

  render(resp) {
    const now = Date.now();
    const tbody = $('#st-table tbody');
    const rows = [];
    const cats = new Set();
    const rank = new Map();
    resp.results.forEach((r, i) => {
      cats.add(r.category);
      rank.set(r.livestream_id, i + 1);
      const hst = this.record(r, now);
      const prev = this.prevRank.get(r.livestream_id);
      let delta = null;
      if (prev === undefined && this.prevRank.size) delta = h('span', { class: 'new', text: 'new' });
      else if (prev > i + 1) delta = h('span', { class: 'delta up', text: '▲' + (prev - i - 1) });
      else if (prev < i + 1) delta = h('span', { class: 'delta down', text: '▼' + (i + 1 - prev) });
      const feat = (name) => (r.features && name in r.features ? r.features[name] : null);
      const tr = h('tr', { class: 'click' + (this.selected === r.livestream_id ? ' sel' : ''), 'data-id': r.livestream_id },
      h('td', { class: 'num rank' }, String(i + 1), delta),
      h('td', null, h('div', { class: 'title', title: r.title, text: r.title || r.livestream_id }),
        h('div', { class: 'sub', text: `${r.livestream_id} · ${r.category || '–'} · ${r.seller_id} · ${r.language || ''}` })),
      h('td', { class: 'num', text: fmt(r.score) }),
      h('td', { class: 'spark' }, sparkline(hst.score)),
      h('td', { class: 'num', text: fmt(r.viewers_now) }),
      h('td', { class: 'spark' }, sparkline(hst.viewers, { color: 'green' })),
      h('td', { class: 'num', text: fmt(feat(this.cols[0])) }),
      h('td', { class: 'spark' }, sparkline(hst.f[this.cols[0]] || [], { color: 'amber' })),
      h('td', { class: 'num', text: fmt(feat(this.cols[1])) }),
      h('td', { class: 'spark' }, sparkline(hst.f[this.cols[1]] || [], { color: 'violet' })));
      rows.push(tr);
    });
    tbody.replaceChildren(...rows);
    $('#st-empty').hidden = rows.length > 0;
    this.prevRank = rank;
    // Forget streams unseen for five minutes.
    for (const [id, hst] of this.history) if (now - hst.seen > 300000 && id !== this.selected) this.history.delete(id);
    // Categories seen so far feed the filter.
    const catSel = $('#st-category');
    const have = new Set([...catSel.options].map((o) => o.value));
    for (const c of [...cats].sort()) if (c && !have.has(c)) catSel.append(h('option', { value: c, text: c }));
    this.last = resp;
    clear($('#st-meta'),
      h('span', { class: 'pill ok', text: 'live' }), ' ',
      `${resp.results.length} streams · ${resp.strategy} · ${resp.matched} matched · ${fmt(resp.took_ms)} ms · ${new Date().toLocaleTimeString()}`);
    this.renderDetail();
  },

  renderDetail() {
    const box = $('#st-detail');
    const r = this.last && this.last.results.find((x) => x.livestream_id === this.selected);
    const hst = this.history.get(this.selected);
    if (!r || !hst) {
      if (this.selected && hst) return; // dropped out of this answer: keep the last view
      clear(box, h('p', { class: 'hint', text: 'Select a stream to see every feature and its recent history.' }));
      return;
    }
    const names = Object.keys(r.features || {}).sort();
    clear(box,
      h('h2', { text: r.title || r.livestream_id }),
      h('div', { class: 'sub', text: `${r.livestream_id} · seller ${r.seller_id}` }),
      h('div', { class: 'chips' },
        h('span', { class: 'chip' }, 'category ', h('b', { text: r.category || '–' })),
        h('span', { class: 'chip' }, 'language ', h('b', { text: r.language || '–' })),
        h('span', { class: 'chip' }, 'status ', h('b', { text: r.status }))),
      h('dl', { class: 'kv' },
        h('dt', { text: 'score' }), h('dd', { text: fmt(r.score) }),
        h('dt', { text: 'viewers now' }), h('dd', { text: fmt(r.viewers_now) })),
      h('h3', { text: 'Features' }),
      h('div', { class: 'featrows' }, names.map((n) => [
        h('span', { class: 'n', title: n, text: n }),
        h('span', { class: 'v', text: fmt(r.features[n]) }),
        sparkline(hst.f[n] || [], { width: 96, height: 18 }),
      ])),
      h('p', { class: 'hint' }, h('a', { href: '#features', text: 'definitions' }), ' · ', h('code', { text: `GET /v1/features/livestream/${r.livestream_id}` })),
    );
  },
};

// ---- page: recommendations -----------------------------------------------------

const Recs = {
  queries: [],

  async init() {
    $('#rc-form').addEventListener('submit', (e) => { e.preventDefault(); this.ask(); });
    $('#rc-query').addEventListener('change', () => this.renderParams());
    $('#rc-active').addEventListener('click', () => this.activeUser());
    try {
      const resp = await api('/v1/queries');
      this.queries = resp.queries || [];
      for (const q of this.queries) $('#rc-query').append(h('option', { value: q.name, text: q.name }));
    } catch (err) { showError($('#rc-error'), err); }
    this.renderParams();
  },
  start() {},
  stop() {},

  query() { return this.queries.find((q) => q.name === $('#rc-query').value); },

  // renderParams shows the chosen named query's parameters as inputs (or
  // the recommendation parameters for plain recommendations).
  renderParams() {
    const q = this.query();
    const box = $('#rc-params');
    $('#rc-more').hidden = !!q;
    $('#rc-desc').textContent = q ? `${q.description || ''}  ·  formula: ${q.formula || 'similarity'}  ·  k ${q.k}${q.max_per_seller ? ' · max ' + q.max_per_seller + ' per seller' : ''}` :
      'GET /v1/recommendations: the user\'s taste k-NN over live streams; users without a taste get the most engaging streams.';
    if (q) $('#rc-k').value = q.k;
    clear(box, (q ? q.params : []).map((p) => {
      const type = p.type === 'number' || p.type === 'integer' ? 'number' : 'text';
      const input = h('input', { type, name: p.name, 'data-param': p.name, class: type === 'number' ? 'short' : null,
        step: p.type === 'number' ? 'any' : null, required: p.required || null, spellcheck: 'false',
        placeholder: p.default !== undefined ? String(p.default) : (p.type === 'strings' ? 'comma list' : ''),
        title: `${p.description || ''} (${p.type}${p.required ? ', required' : ''})` });
      return h('label', { title: p.description || '' }, `${p.name}${p.required ? ' *' : ''}`, input);
    }));
  },

  // activeUser picks a user who chatted in the most engaging live stream
  // (its top_chatters_1h feature), so a new visitor has someone to ask about.
  async activeUser() {
    try {
      const pop = await api('/v1/recommendations?' + qs({ user_id: '~console', k: 10 }));
      for (const r of pop.results) {
        const lf = await api('/v1/features/livestream/' + encodeURIComponent(r.livestream_id));
        for (const v of Object.values(lf.values || {})) {
          if (Array.isArray(v) && v.length && v[0] && typeof v[0].key === 'string' && v[0].key.startsWith('u-')) {
            $('#rc-user').value = v[0].key;
            return this.ask();
          }
        }
      }
      showError($('#rc-error'), new Error('no stream has chatters yet'));
    } catch (err) { showError($('#rc-error'), err); }
  },

  async ask() {
    const user = $('#rc-user').value.trim();
    const q = this.query();
    const k = $('#rc-k').value;
    let path;
    if (q) {
      const params = { user_id: user, k, explain: true };
      for (const input of $('#rc-params').querySelectorAll('input')) params[input.dataset.param] = input.value.trim();
      path = `/v1/queries/${encodeURIComponent(q.name)}?` + qs(params);
    } else {
      path = '/v1/recommendations?' + qs({
        user_id: user, k, explain: true, formula: $('#rc-formula').value.trim(),
        max_per_seller: Number($('#rc-mps').value) || '', category: $('#rc-category').value.trim(),
        exclude_seen: $('#rc-seen').checked,
      });
    }
    showError($('#rc-error'), null);
    $('#rc-meta').textContent = 'asking…';
    const [rec, feats] = await Promise.allSettled([api(path), api('/v1/features/user/' + encodeURIComponent(user))]);
    if (rec.status === 'rejected') {
      showError($('#rc-error'), rec.reason);
      $('#rc-meta').textContent = '';
    } else {
      this.renderAnswer(rec.value, path);
    }
    this.renderUser(user, feats);
  },

  renderAnswer(resp, path) {
    const max = Math.max(...resp.results.map((r) => r.score), 0);
    $('#rc-meta').textContent = `${resp.strategy}${resp.query ? ' · ' + resp.query : ''} · ${resp.results.length} results · scanned ${fmt(resp.scanned)} · matched ${fmt(resp.matched)} · ${fmt(resp.took_ms)} ms`;
    const sim = resp.results.some((r) => r.similarity !== undefined);
    $('#rc-table').classList.toggle('no-sim', !sim);
    clear($('#rc-table tbody'), resp.results.map((r, i) => h('tr', null,
      h('td', { class: 'num rank', text: String(i + 1) }),
      h('td', null, h('div', { class: 'title', title: r.title, text: r.title }), h('div', { class: 'sub', text: `${r.livestream_id} · ${r.seller_id}` })),
      h('td', null, scorebar(r.score, max)),
      h('td', { class: 'num sim', text: r.similarity !== undefined ? fmt(r.similarity) : '' }),
      h('td', { class: 'num', text: fmt(r.viewers_now) }),
      h('td', { text: r.category }))));
    if (!resp.results.length) $('#rc-table tbody').append(h('tr', null, h('td', { colspan: 6, class: 'empty', text: 'No stream passes the filter.' })));
    const ex = resp.explain;
    const box = $('#rc-explain');
    if (!ex) { clear(box, h('h2', { text: 'Explain' }), h('p', { class: 'hint', text: 'no explain in the answer' })); return; }
    const chip = (k, v) => (v === undefined || v === null || v === '' ? null : h('span', { class: 'chip' }, k + ' ', h('b', { text: String(v) })));
    const parts = ex.partitions || [];
    const rk = ex.ranking;
    clear(box,
      h('h2', null, 'Explain ', h('span', { class: 'meta', text: decodeURIComponent(path) })),
      h('div', { class: 'chips' },
        chip('strategy', ex.strategy), chip('fallback from', ex.fallback_from), chip('plan', ex.plan),
        chip('k', ex.k), chip('fetched', ex.fetched), chip('per partition', ex.fetched_per_partition),
        chip('estimated', fmt(ex.estimated)), chip('index', fmt(ex.index_ms) + ' ms')),
      h('h3', { text: `Partitions (${parts.length}): scanned` }),
      bars(parts.map((p) => ({ label: `p${p.partition} · ${p.plan}${p.far ? ' · far' : ''}`, value: p.scanned,
        text: `${fmt(p.scanned)} / ${fmt(p.matched)} · ${fmt(p.took_ms)} ms` }))),
      rk ? [h('h3', { text: 'Ranking' }), h('div', { class: 'chips' },
        chip('formula', rk.formula || 'similarity'), chip('overfetch', rk.overfetch), chip('max per seller', rk.max_per_seller),
        chip('candidates', rk.candidates), chip('evaluated', rk.evaluated), chip('non-finite', rk.non_finite),
        chip('dropped by diversity', rk.dropped_by_diversity), chip('took', fmt(rk.took_ms) + ' ms'))] : null,
      h('h3', { text: 'Scores' }),
      bars(resp.results.map((r, i) => ({ label: `${i + 1}. ${r.title}`, value: Math.max(0, r.score), text: fmt(r.score) }))),
      h('h3', { text: 'Effective filter' }),
      h('pre', { class: 'json', text: JSON.stringify(ex.filter, null, 1) }));
  },

  renderUser(user, feats) {
    const box = $('#rc-user-card');
    if (feats.status === 'rejected') {
      const unknown = feats.reason.status === 404;
      clear(box, h('h2', { text: user }), h('p', { class: 'hint', text: unknown ?
        'Unknown user: no events yet, so the answer is the popular fallback.' : `${feats.reason.status || ''} ${feats.reason.message}` }));
      return;
    }
    const u = feats.value;
    const cats = Object.entries(u.categories || {}).sort((a, b) => b[1] - a[1]);
    const sig = Object.entries(u.signals || {});
    const fnames = Object.keys(u.features || {}).sort();
    clear(box,
      h('h2', null, u.user_id, ' ', h('span', { class: 'pill ' + (u.has_taste ? 'ok' : 'warn'), text: u.has_taste ? 'has taste' : 'no taste yet' })),
      u.last_event ? h('div', { class: 'sub', text: 'last event ' + new Date(u.last_event).toLocaleString() }) : null,
      h('h3', { text: 'Signals' }),
      h('div', { class: 'chips' }, sig.length ? sig.map(([k, v]) => h('span', { class: 'chip' }, k + ' ', h('b', { text: fmt(v) }))) : h('span', { class: 'hint', text: 'none' })),
      h('h3', { text: 'Category affinity' }),
      bars(cats.slice(0, 10).map(([c, v]) => ({ label: c, value: v, color: 'green' }))),
      h('h3', { text: 'Taste features' }),
      fnames.length ? h('dl', { class: 'kv' }, fnames.map((n) => [h('dt', { class: 'mono', text: n }), h('dd', { text: fmtValue(u.values ? u.values[n] : u.features[n]) })])) :
        h('p', { class: 'hint', text: 'no user features defined' }),
      h('h3', { text: `Recent streams (${(u.recent || []).length})` }),
      h('div', { class: 'chips' }, (u.recent || []).slice(0, 16).map((r) => h('span', { class: 'chip mono', title: r.at || '', text: r.livestream_id }))));
  },
};

// fmtValue prints a typed feature value: a number, null, a list, or top-k
// {key, count} entries.
function fmtValue(v) {
  if (v === null || v === undefined) return '–';
  if (typeof v === 'number') return fmt(v);
  if (Array.isArray(v)) {
    if (!v.length) return '[]';
    return v.slice(0, 4).map((x) => (x && typeof x === 'object' ? `${x.key} ${fmt(x.count)}` : String(x))).join(', ') + (v.length > 4 ? ` +${v.length - 4}` : '');
  }
  return String(v);
}

// ---- page: search ----------------------------------------------------------------

const Search = {
  init() { $('#sr-form').addEventListener('submit', (e) => { e.preventDefault(); this.search(); }); },
  start() { $('#sr-text').focus(); },
  stop() {},

  async search() {
    const list = (v) => v.split(',').map((x) => x.trim()).filter(Boolean);
    const filter = { status: $('#sr-scheduled').checked ? ['live', 'scheduled'] : ['live'] };
    const cat = list($('#sr-category').value), lang = list($('#sr-language').value);
    if (cat.length) filter.category = cat;
    if (lang.length) filter.language = lang;
    const minv = $('#sr-minv').value;
    if (minv !== '') filter.ranges = [{ field: 'viewers_now', min: Number(minv) }];
    const body = { text: $('#sr-text').value.trim(), k: Number($('#sr-k').value) || 12, filter };
    const formula = $('#sr-formula').value.trim();
    if (formula) body.formula = formula;
    const mps = Number($('#sr-mps').value);
    if (mps) body.max_per_seller = mps;
    showError($('#sr-error'), null);
    $('#sr-meta').textContent = 'searching…';
    let resp;
    try {
      resp = await api('/v1/search', { method: 'POST', body });
    } catch (err) {
      showError($('#sr-error'), err);
      $('#sr-meta').textContent = '';
      return;
    }
    $('#sr-meta').textContent = `${resp.results.length} results for “${body.text}” · ${resp.strategy} · scanned ${fmt(resp.scanned)} · matched ${fmt(resp.matched)} · ${fmt(resp.took_ms)} ms (embedding the text included)`;
    const max = Math.max(...resp.results.map((r) => r.score), 0);
    clear($('#sr-results'), resp.results.length ? resp.results.map((r, i) => h('div', { class: 'result' },
      h('div', { class: 'top' }, h('div', { class: 'title', title: r.title, text: r.title }), h('span', { class: 'pos', text: '#' + (i + 1) })),
      h('div', { class: 'sub', text: `${r.livestream_id} · ${r.seller_id}` }),
      h('div', { class: 'chips' },
        h('span', { class: 'chip' }, h('b', { text: r.category })), h('span', { class: 'chip', text: r.language }),
        h('span', { class: 'chip' }, 'viewers ', h('b', { text: fmt(r.viewers_now) })),
        r.similarity !== undefined ? h('span', { class: 'chip' }, 'similarity ', h('b', { text: fmt(r.similarity) })) : null),
      scorebar(r.score, max))) : h('p', { class: 'empty', text: 'No live stream matches.' }));
  },
};

// ---- page: pipeline health -----------------------------------------------------------

// parseProm reads the Prometheus text format into name -> [{labels, value}].
function parseProm(text) {
  const out = new Map();
  const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
  const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  for (const raw of text.split('\n')) {
    if (!raw || raw[0] === '#') continue;
    const m = line.exec(raw);
    if (!m) continue;
    const labels = {};
    if (m[2]) for (const l of m[2].matchAll(label)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    if (!out.has(m[1])) out.set(m[1], []);
    out.get(m[1]).push({ labels, value });
  }
  return out;
}

// sumBy sums a metric's samples by one label (or all of them with by=null).
function sumBy(m, name, by, where = () => true) {
  const acc = new Map();
  for (const smp of m.get(name) || []) {
    if (!where(smp.labels)) continue;
    const key = by ? smp.labels[by] || '' : '';
    acc.set(key, (acc.get(key) || 0) + smp.value);
  }
  return acc;
}

// quantileFrom estimates a quantile from cumulative histogram buckets
// ({le -> count}), interpolating inside the bucket.
function quantileFrom(buckets, q) {
  const les = [...buckets.keys()].sort((a, b) => a - b);
  if (!les.length) return NaN;
  const total = buckets.get(les[les.length - 1]);
  if (!(total > 0)) return NaN;
  const rank = q * total;
  let prevLe = 0, prevCount = 0;
  for (const le of les) {
    const c = buckets.get(le);
    if (c >= rank) {
      if (!Number.isFinite(le)) return prevLe;
      return prevLe + ((rank - prevCount) / Math.max(1e-9, c - prevCount)) * (le - prevLe);
    }
    prevLe = le; prevCount = c;
  }
  return prevLe;
}

// histBuckets collects a histogram's buckets by one label, optionally minus
// an earlier scrape's (the distribution between two scrapes).
function histBuckets(m, name, by, prev) {
  const out = new Map();
  const collect = (mm, sign) => {
    for (const smp of mm.get(name + '_bucket') || []) {
      const key = by ? smp.labels[by] || '' : '';
      const le = smp.labels.le === '+Inf' ? Infinity : Number(smp.labels.le);
      if (!out.has(key)) out.set(key, new Map());
      const b = out.get(key);
      b.set(le, (b.get(le) || 0) + sign * smp.value);
    }
  };
  collect(m, 1);
  if (prev) collect(prev, -1);
  return out;
}

const Health = {
  prev: null,
  prevAt: 0,
  series: new Map(), // key -> values over scrapes

  init() {},
  start() { this.stopPoll = poller(2000, () => this.refresh()); },
  stop() { if (this.stopPoll) this.stopPoll(); },

  push(key, v) {
    if (!this.series.has(key)) this.series.set(key, []);
    const a = this.series.get(key);
    a.push(v);
    if (a.length > 90) a.shift();
    return a;
  },

  async refresh() {
    const resp = await fetch('/metrics');
    const m = parseProm(await resp.text());
    const at = performance.now();
    const prev = this.prev, dt = prev ? (at - this.prevAt) / 1000 : 0;
    this.prev = m; this.prevAt = at;
    const rate = (name, by, where) => {
      const cur = sumBy(m, name, by, where);
      const out = new Map();
      if (!prev || dt <= 0) return out;
      const old = sumBy(prev, name, by, where);
      for (const [k, v] of cur) out.set(k, Math.max(0, (v - (old.get(k) || 0)) / dt));
      return out;
    };
    const one = (name, where) => [...sumBy(m, name, null, where).values()][0];

    // Tiles.
    const evRate = rate('livefeed_processor_events_total', null).get('') || 0;
    const apiRate = rate('livefeed_http_request_seconds_count', null).get('') || 0;
    const stale = Math.max(0, ...sumBy(m, 'livefeed_serving_staleness_seconds', 'table').values());
    const dlqTotal = (one('livefeed_dead_letters_total') || 0) + (one('livefeed_embedding_dead_letters_total') || 0);
    const tile = (k, v, unit, series, color) => h('div', { class: 'tile' }, h('div', { class: 'k', text: k }),
      h('div', { class: 'big' }, v, unit ? h('small', { text: unit }) : null), sparkline(series, { width: 200, height: 28, color, stretch: true }));
    if (prev) {
      clear($('#hl-tiles'),
        tile('events / s', fmt(evRate), 'all groups', this.push('t:ev', evRate)),
        tile('live streams indexed', fmt(one('livefeed_index_streams') || 0), '', this.push('t:idx', one('livefeed_index_streams') || 0), 'green'),
        tile('serving staleness', fmtSeconds(stale), 'worst view', this.push('t:stale', stale), 'amber'),
        tile('dead letters', fmt(dlqTotal), 'since start', this.push('t:dlq', dlqTotal), 'violet'),
        tile('API requests / s', fmt(apiRate), '', this.push('t:api', apiRate)));
    }

    // Events per second by group, and their outcome mix.
    const byGroup = rate('livefeed_processor_events_total', 'group');
    const groups = [...sumBy(m, 'livefeed_processor_events_total', 'group').keys()].sort();
    clear($('#hl-groups'), groups.length ? h('table', { class: 'grid' },
      h('thead', null, h('tr', null, h('th', { text: 'group' }), h('th', { class: 'num', text: 'events/s' }), h('th', { text: 'last 3 min' }), h('th', { class: 'num', text: 'total' }))),
      h('tbody', null, groups.map((g) => {
        const r = byGroup.get(g) || 0;
        return h('tr', null, h('td', { class: 'mono', text: g }), h('td', { class: 'num', text: fmt(r) }),
          h('td', null, sparkline(this.push('g:' + g, r), { width: 160 })),
          h('td', { class: 'num', text: fmt(sumBy(m, 'livefeed_processor_events_total', 'group').get(g)) }));
      }))) : h('p', { class: 'hint', text: 'No processor runs in this process (livefeed serve): its events are counted by `livefeed process`.' }),
    outcomeLine(m));

    // Consumer lag.
    const lagRows = [];
    for (const [g, v] of sumBy(m, 'livefeed_processor_group_lag_records', 'group')) lagRows.push({ label: 'group ' + g, value: v, spark: this.push('lag:' + g, v) });
    const emb = m.get('livefeed_embedding_lag_records');
    if (emb) lagRows.push({ label: 'embedding worker', value: one('livefeed_embedding_lag_records'), spark: this.push('lag:emb', one('livefeed_embedding_lag_records')), color: 'violet' });
    for (const [t, v] of sumBy(m, 'livefeed_serving_view_lag_records', 'table')) lagRows.push({ label: 'view ' + t, value: v, spark: this.push('vlag:' + t, v), color: 'green' });
    clear($('#hl-lag'), sparkRows(lagRows, fmt),
      m.get('livefeed_processor_group_lag_records') ? null : h('p', { class: 'hint', text: 'Processor group lag is read by the processes that run the groups.' }));

    // Staleness and data latency.
    const staleRows = [];
    for (const [t, v] of sumBy(m, 'livefeed_serving_staleness_seconds', 'table')) staleRows.push({ label: 'staleness ' + t, value: v, spark: this.push('st:' + t, v), color: 'amber' });
    for (const [t, v] of sumBy(m, 'livefeed_serving_newest_record_age_seconds', 'table')) staleRows.push({ label: 'newest record age ' + t, value: v, spark: this.push('age:' + t, v) });
    const embAge = histBuckets(m, 'livefeed_embedding_record_age_seconds', null, prev).get('');
    if (embAge) {
      const p50 = quantileFrom(embAge, 0.5);
      if (Number.isFinite(p50)) staleRows.push({ label: 'stream record → vector p50', value: p50, spark: this.push('embage', p50), color: 'violet' });
    }
    const running = sumBy(m, 'livefeed_serving_view_running', 'table');
    clear($('#hl-stale'), sparkRows(staleRows, fmtSeconds),
      h('div', { class: 'chips' }, [...running].map(([t, v]) => h('span', { class: 'pill ' + (v ? 'ok' : 'warn'), text: `${t} ${v ? 'running' : 'recovering'}` }))));

    // Dead letters by reason.
    const dl = [];
    for (const smp of m.get('livefeed_dead_letters_total') || []) dl.push({ label: `${smp.labels.reason} · ${smp.labels.topic}`, value: smp.value, color: 'red' });
    for (const smp of m.get('livefeed_embedding_dead_letters_total') || []) dl.push({ label: `${smp.labels.reason} · embedding`, value: smp.value, color: 'red' });
    dl.sort((a, b) => b.value - a.value);
    const dup = sumBy(m, 'livefeed_duplicates_absorbed_total', null).get('') || 0;
    const late = sumBy(m, 'livefeed_late_events_dropped_total', null).get('') || 0;
    clear($('#hl-dlq'), dl.length ? bars(dl) : h('p', { class: 'hint', text: 'No dead letters.' }),
      h('div', { class: 'chips' }, h('span', { class: 'chip' }, 'late events dropped ', h('b', { text: fmt(late) })),
        h('span', { class: 'chip' }, 'duplicates absorbed ', h('b', { text: fmt(dup) }))));

    // API latency by route between the two scrapes.
    const lat = histBuckets(m, 'livefeed_http_request_seconds', 'route', prev);
    const latAll = histBuckets(m, 'livefeed_http_request_seconds', 'route', null);
    const apiRows = [];
    const reqRate = rate('livefeed_http_request_seconds_count', 'route');
    for (const [route, recent] of [...lat].sort()) {
      // Between the two scrapes; since the start when the route was idle.
      const b = Number.isFinite(quantileFrom(recent, 0.5)) ? recent : latAll.get(route);
      const p50 = quantileFrom(b, 0.5), p99 = quantileFrom(b, 0.99);
      apiRows.push(h('tr', null, h('td', { class: 'mono', text: route }), h('td', { class: 'num', text: fmt(reqRate.get(route) || 0) }),
        h('td', { class: 'num', text: Number.isFinite(p50) ? fmtSeconds(p50) : '–' }), h('td', { class: 'num', text: Number.isFinite(p99) ? fmtSeconds(p99) : '–' })));
    }
    clear($('#hl-api'), apiRows.length ? h('table', { class: 'grid' }, h('thead', null, h('tr', null, h('th', { text: 'route' }), h('th', { class: 'num', text: 'req/s' }),
      h('th', { class: 'num', text: 'p50' }), h('th', { class: 'num', text: 'p99' }))), h('tbody', null, apiRows)) : h('p', { class: 'hint', text: 'No API requests yet.' }));

    // Embedding worker.
    const recs = sumBy(m, 'livefeed_embedding_records_total', 'outcome');
    const hits = one('livefeed_embedding_cache_hits_total') || 0, misses = one('livefeed_embedding_cache_misses_total') || 0;
    const mt = histBuckets(m, 'livefeed_embedding_model_seconds', null, null).get('');
    clear($('#hl-embed'), recs.size ? [bars([...recs].map(([o, v]) => ({ label: o, value: v, color: 'violet' }))),
      h('div', { class: 'chips' },
        h('span', { class: 'chip' }, 'texts embedded ', h('b', { text: fmt(one('livefeed_embedding_texts_embedded_total') || 0) })),
        h('span', { class: 'chip' }, 'cache hit rate ', h('b', { text: hits + misses ? nf1.format((100 * hits) / (hits + misses)) + ' %' : '–' })),
        mt ? h('span', { class: 'chip' }, 'model call p50 ', h('b', { text: fmtSeconds(quantileFrom(mt, 0.5)) })) : null)] :
      h('p', { class: 'hint', text: 'No embedding worker in this process.' }));

    // Readiness.
    updateReady();
  },
};

// outcomeLine counts the processors' events by outcome (ok, late, dead_letter, …).
function outcomeLine(m) {
  const outcomes = sumBy(m, 'livefeed_processor_events_total', 'outcome');
  if (!outcomes.size) return null;
  return h('div', { class: 'chips' }, [...outcomes].sort().map(([o, v]) => h('span', { class: 'chip' }, o + ' ', h('b', { text: fmt(v) }))));
}

// sparkRows: label, current value, sparkline.
function sparkRows(rows, f) {
  if (!rows.length) return h('p', { class: 'hint', text: 'nothing reported yet' });
  return h('div', { class: 'featrows' }, rows.map((r) => [
    h('span', { class: 'n', title: r.label, text: r.label }),
    h('span', { class: 'v', text: f(r.value) }),
    sparkline(r.spark || [], { width: 96, height: 18, color: r.color || '' }),
  ]));
}

// ---- page: features ---------------------------------------------------------------------

const Features = {
  means: new Map(), // entity/feature -> mean over refreshes
  data: null,
  drift: new Map(), // entity/feature -> its line of GET /v1/features/drift
  open: new Map(), // entity/feature -> its distribution, for the cards showing drift

  init() { $('#ft-filter').addEventListener('input', () => this.render()); },
  start() { this.stopPoll = poller(5000, () => this.refresh()); },
  stop() { if (this.stopPoll) this.stopPoll(); },

  async refresh() {
    try {
      const [data, drift] = await Promise.all([api('/v1/features'), api('/v1/features/drift')]);
      this.data = data;
      this.driftAt = drift;
      this.drift = new Map(drift.features.map((f) => [f.entity + '/' + f.feature, f]));
      // Refresh the distributions of the cards showing them.
      await Promise.all([...this.open.keys()].map(async (key) => {
        const [entity, name] = key.split('/');
        this.open.set(key, await api(`/v1/features/${encodeURIComponent(entity)}/${encodeURIComponent(name)}/distribution`));
      }));
    } catch (err) {
      clear($('#ft-meta'), h('span', { class: 'pill bad', text: `${err.status || ''} ${err.message}` }));
      return;
    }
    for (const e of this.data.entities) {
      for (const f of e.features) {
        const key = e.entity + '/' + f.name;
        if (!this.means.has(key)) this.means.set(key, []);
        const a = this.means.get(key);
        a.push(f.distribution.mean);
        if (a.length > 60) a.shift();
      }
    }
    this.render();
  },

  render() {
    if (!this.data) return;
    const q = $('#ft-filter').value.trim().toLowerCase();
    const match = (f) => !q || [f.name, f.aggregation, f.description, ...(f.sources || [])].some((x) => (x || '').toLowerCase().includes(q));
    let n = 0;
    clear($('#ft-entities'), this.data.entities.map((e) => {
      const feats = e.features.filter(match);
      n += feats.length;
      if (!feats.length) return null;
      return h('section', { class: 'entity' },
        h('h2', null, e.entity, h('span', { class: 'meta', text: `${feats.length} features · distributions over ${fmt(e.count)} ${e.population}${e.truncated ? ' (truncated)' : ''}` }),
          e.error ? h('span', { class: 'pill warn', text: e.error }) : null),
        h('div', { class: 'fgrid' }, feats.map((f) => this.card(e, f))));
    }));
    const drifting = [...this.drift.values()].filter((f) => f.level === 'significant').length;
    $('#ft-meta').textContent = `${n} features · ${drifting} drifting (PSI ≥ 0.25 over the last ${this.driftAt ? this.driftAt.window : '–'}) · refreshed ${new Date(this.data.at).toLocaleTimeString()} · ${fmt(this.data.took_ms)} ms`;
  },

  card(e, f) {
    const d = f.distribution;
    const chip = (k, v) => (v ? h('span', { class: 'chip' }, k + ' ', h('b', { text: String(v) })) : null);
    const means = this.means.get(e.entity + '/' + f.name) || [];
    return h('div', { class: 'feature', 'data-feature': f.name },
      h('div', { class: 'name', text: f.name }),
      h('div', { class: 'd', text: f.description || '' }),
      h('div', { class: 'chips' },
        chip('from', (f.sources || []).join(', ')), chip('agg', f.aggregation + (f.k ? ` k=${f.k}` : '') + (f.p ? ` p=${f.p}` : '')),
        chip('window', f.window), chip('lateness', f.lateness), chip('half-life', f.half_life), chip('per', f.per)),
      f.filter || f.field ? h('div', { class: 'chips' },
        f.filter ? h('span', { class: 'chip mono', title: 'filter', text: 'where ' + f.filter }) : null,
        f.field ? h('span', { class: 'chip mono', title: 'field', text: 'of ' + f.field }) : null) : null,
      histogram(d),
      h('div', { class: 'stats' },
        h('span', null, 'n ', h('b', { text: fmt(d.count) })),
        h('span', null, 'non-zero ', h('b', { text: d.count ? nf0.format((100 * d.non_zero) / d.count) + '%' : '–' })),
        h('span', null, 'p50 ', h('b', { text: fmt(d.p50) })),
        h('span', null, 'mean ', h('b', { text: fmt(d.mean) })),
        h('span', null, 'p90 ', h('b', { text: fmt(d.p90) })),
        h('span', null, 'max ', h('b', { text: fmt(d.max) }))),
      this.driftRow(e, f),
      h('div', { class: 'trend' }, sparkline(means, { width: 120, height: 18, color: 'green' }), `mean, last ${means.length * 5} s`));
  },

  // driftRow is the feature's drift from its reference (serving/drift) and,
  // once asked for, the two distributions side by side.
  driftRow(e, f) {
    const key = e.entity + '/' + f.name;
    const dr = this.drift.get(key);
    const level = dr ? dr.level : 'unknown';
    const dist = this.open.get(key);
    const toggle = async () => {
      if (this.open.has(key)) { this.open.delete(key); this.render(); return; }
      try {
        this.open.set(key, await api(`/v1/features/${encodeURIComponent(e.entity)}/${encodeURIComponent(f.name)}/distribution`));
      } catch (err) { return; }
      this.render();
    };
    return h('div', { class: 'drift', 'data-level': level },
      h('div', { class: 'line' },
        h('span', { class: 'pill ' + (driftClass[level] || ''), title: 'PSI of the served values over the rolling window against the reference: < 0.1 none, 0.1–0.25 moderate, ≥ 0.25 significant',
          text: dr && dr.psi !== null ? `drift ${level} · PSI ${nf2.format(dr.psi)}` : 'drift unknown' }),
        dr ? h('span', { class: 'meta', text: `null ${nf1.format(100 * dr.null_rate)}%${dr.null_rate_change ? ` (${dr.null_rate_change > 0 ? '+' : ''}${nf1.format(100 * dr.null_rate_change)} pts)` : ''}` }) : null,
        h('button', { class: 'ghost cmp' + (dist ? ' on' : ''), type: 'button', text: dist ? 'hide' : 'vs reference', onclick: toggle })),
      dist ? [
        compareChart(dist),
        h('div', { class: 'stats' },
          h('span', null, h('i', { class: 'key ref' }), 'reference ', h('b', { text: dist.reference ? `n ${fmt(dist.reference.count)}` : '–' }),
            dist.reference_source ? ` (${dist.reference_source})` : ''),
          h('span', null, h('i', { class: 'key cur' }), `last ${dist.window} `, h('b', { text: `n ${fmt(dist.current.count)}` })),
          quantileText('p50', dist, 0.5), quantileText('p95', dist, 0.95)),
      ] : null);
  },
};

// ---- shell ---------------------------------------------------------------------------------

const pages = { streams: Streams, recs: Recs, search: Search, health: Health, features: Features };
let current = null;

function route() {
  let name = location.hash.replace(/^#/, '');
  if (!pages[name]) name = 'streams';
  if (current === name) return;
  if (current) pages[current].stop();
  current = name;
  for (const sec of document.querySelectorAll('main > section.page')) sec.hidden = sec.id !== 'page-' + name;
  for (const a of document.querySelectorAll('#tabs a')) a.classList.toggle('active', a.dataset.page === name);
  document.body.dataset.page = name;
  pages[name].start();
}

async function updateReady() {
  const pill = $('#ready');
  try {
    const resp = await fetch('/readyz');
    const body = await resp.json();
    const status = body.status || (resp.ok ? 'ready' : 'not ready');
    pill.textContent = status;
    pill.className = 'pill ' + (resp.ok ? (status === 'ready' ? 'ok' : 'warn') : 'bad');
    pill.title = JSON.stringify(body);
  } catch (err) {
    pill.textContent = 'unreachable';
    pill.className = 'pill bad';
  }
}

async function main() {
  $('#token-button').addEventListener('click', () => askToken('Enter the API token (LIVEFEED_API_TOKEN); leave empty for none.'));
  $('#token-form').addEventListener('submit', () => {});
  updateReady();
  setInterval(updateReady, 5000);
  await Promise.all(Object.values(pages).map((p) => p.init()));
  window.addEventListener('hashchange', route);
  route();
  document.body.dataset.ready = 'true';
}

main();
