// Logline admin page: plain browser JavaScript over the public HTTP API (docs/http.md).

const $ = (selector) => document.querySelector(selector);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === 'class') node.className = value;
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
};

let apiKey = sessionStorage.getItem('logline-api-key') || '';

async function api(path) {
  const response = await fetch(path, { headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {} });
  if (response.status === 401 || response.status === 403) {
    $('#key-form').hidden = false;
    throw new Error('an API key with read rights is needed');
  }
  // Unknown or soft-deleted (404), deleted for good (410): the caller says which from the metadata.
  if (response.status === 404 || response.status === 410) return null;
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

/** A write (replay, skip): needs a key with write rights on every stream when the server has keys. */
async function apiPost(path, body) {
  const headers = { 'content-type': 'application/json' };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;
  const response = await fetch(path, { method: 'POST', headers, body: JSON.stringify(body) });
  const answer = await response.json().catch(() => ({}));
  if (response.status === 401 || response.status === 403) {
    $('#key-form').hidden = false;
    throw new Error('an API key with write rights on every stream is needed');
  }
  if (!response.ok) throw new Error(answer.message || `${path}: HTTP ${response.status}`);
  return answer;
}

// Pretty JSON as DOM nodes (never innerHTML: event data is untrusted).
function prettyJson(value, indent = '') {
  const frag = document.createDocumentFragment();
  const span = (cls, text) => el('span', { class: cls }, text);
  if (value === null) frag.append(span('z', 'null'));
  else if (typeof value === 'string') frag.append(span('s', JSON.stringify(value)));
  else if (typeof value === 'number') frag.append(span('n', String(value)));
  else if (typeof value === 'boolean') frag.append(span('b', String(value)));
  else if (Array.isArray(value)) {
    if (!value.length) frag.append('[]');
    else {
      frag.append('[\n');
      value.forEach((item, i) => {
        frag.append(`${indent}  `, prettyJson(item, `${indent}  `), i < value.length - 1 ? ',\n' : '\n');
      });
      frag.append(`${indent}]`);
    }
  } else {
    const keys = Object.keys(value);
    if (!keys.length) frag.append('{}');
    else {
      frag.append('{\n');
      keys.forEach((key, i) => {
        frag.append(
          `${indent}  `,
          span('k', JSON.stringify(key)),
          ': ',
          prettyJson(value[key], `${indent}  `),
          i < keys.length - 1 ? ',\n' : '\n',
        );
      });
      frag.append(`${indent}}`);
    }
  }
  return frag;
}

async function loadStats() {
  try {
    const stats = await api('/v1/stats');
    $('#stats').textContent = `${stats.backend} · ${stats.events} events · ${stats.streams} streams · head ${stats.headPosition}`;
  } catch (error) {
    $('#stats').textContent = String(error.message);
  }
}

// --- streams list with prefix search ---
let lastStream = '';
/** Which call of loadStreams is the latest: only its answer is shown. */
let streamsCall = 0;
async function loadStreams(append = false) {
  const call = ++streamsCall;
  const typed = $('#stream-search').value.trim();
  // A category is the part of a stream id before its first '-' (order-17 is in category order).
  const prefix = typed && $('#search-mode').value === 'category' ? `${typed.replace(/-+$/, '')}-` : typed;
  const params = new URLSearchParams({ limit: '100' });
  if (prefix) params.set('prefix', prefix);
  if (append && lastStream) params.set('after', lastStream);
  const list = $('#streams');
  try {
    const { streams } = await api(`/v1/streams?${params}`);
    // A later call (another prefix typed, a refresh after live events) answers for the list:
    // an earlier answer arriving after it would show a stale list.
    if (call !== streamsCall) return;
    // A refresh rebuilds the list: the stream that had the keyboard focus keeps it.
    const focused = append ? undefined : document.activeElement?.closest?.('#streams li')?.dataset.stream;
    if (!append) list.replaceChildren();
    for (const stream of streams) {
      list.append(
        el(
          'li',
          {
            'data-stream': stream.streamId,
            tabindex: '0',
            role: 'button',
            onclick: () => showStream(stream.streamId),
            // Keyboard: Enter or Space opens the stream, as a click does.
            onkeydown: (e) => {
              if (e.key === 'Enter' || e.key === ' ') {
                e.preventDefault();
                showStream(stream.streamId);
              }
            },
          },
          el('span', {}, stream.streamId),
          el('span', { class: 'version' }, `v${stream.version}`),
        ),
      );
    }
    if (focused) [...list.children].find((li) => li.dataset.stream === focused)?.focus();
    lastStream = streams.length ? streams[streams.length - 1].streamId : lastStream;
    $('#more-streams').hidden = streams.length < 100;
    if (!list.children.length) list.append(el('li', { class: 'empty' }, prefix ? 'No stream with this prefix' : 'No streams yet'));
  } catch (error) {
    if (call === streamsCall) list.replaceChildren(el('li', { class: 'empty' }, String(error.message)));
  }
}

// --- retention settings and deletions (docs/lifecycle.md#retention-and-deletion) ---
/** "keeps the last 100 · at most 7 d old · from v5 · deleted (soft)", or '' for a stream without any. */
function describeLifecycle(meta) {
  const parts = [];
  if (meta.maxCount !== undefined) parts.push(`keeps the last ${meta.maxCount}`);
  if (meta.maxAgeSeconds !== undefined) parts.push(`at most ${meta.maxAgeSeconds} s old`);
  if (meta.truncateBefore !== undefined) parts.push(`from v${meta.truncateBefore}`);
  if (meta.deleted) parts.push(`deleted (${meta.deleted})`);
  return parts.join(' · ');
}

async function showLifecycle(stream) {
  const line = $('#stream-lifecycle');
  const meta = await api(`/v1/streams/${encodeURIComponent(stream)}/metadata`).catch(() => null);
  const text = meta ? describeLifecycle(meta) : '';
  line.textContent = text ? `Retention: ${text}` : '';
  line.hidden = !text;
  return meta;
}

async function loadLifecycles() {
  const list = $('#lifecycles');
  try {
    const { streams } = await api('/v1/lifecycles?limit=100');
    list.replaceChildren(
      ...streams.map((meta) =>
        el(
          'li',
          { 'data-stream': meta.streamId, class: meta.deleted ? `deleted ${meta.deleted}` : '' },
          el(
            'a',
            {
              href: '#',
              onclick: (e) => {
                e.preventDefault();
                showStream(meta.streamId);
              },
            },
            meta.streamId,
          ),
          ` v${meta.version} · ${describeLifecycle(meta)}`,
        ),
      ),
    );
    if (!streams.length) list.append(el('li', { class: 'empty' }, 'none'));
  } catch (error) {
    list.replaceChildren(el('li', { class: 'empty' }, String(error.message)));
  }
}

// --- one stream's events, newest first ---
let current = { stream: '', next: null };
/** Recorded more than a second after it occurred: a late (retroactive) event. */
const isLate = (event) => Date.parse(event.recordedAt) - Date.parse(event.occurredAt) > 1000;
const isCorrection = (event) => Array.isArray(event.metadata?.correctionOf);

/** Above this many characters of JSON an event is shown as plain text, on request: a 1 MiB event must not freeze the page. */
const LARGE_EVENT_CHARS = 64 * 1024;
function eventBody(event) {
  const value = { data: event.data, metadata: event.metadata };
  const text = JSON.stringify(value, null, 2);
  const body = el('pre');
  if (text.length <= LARGE_EVENT_CHARS) {
    body.append(prettyJson(value));
    return body;
  }
  body.textContent = `${text.slice(0, 4096)}\n…`;
  const all = el('button', { type: 'button', class: 'show-all' }, `Show all ${Math.round(text.length / 1024)} KiB`);
  all.addEventListener('click', () => {
    body.textContent = text; // one text node: no per-value DOM nodes for a huge event
    all.remove();
  });
  return el('div', { class: 'large' }, body, all);
}

/** Events with personal data name their subject; a click shows the subject's state (docs/lifecycle.md). */
function personalBadge(event) {
  const subject = event.metadata?.subject;
  if (!Array.isArray(event.metadata?.personal) || typeof subject !== 'string') return '';
  const forgotten = event.metadata.forgotten === true;
  return el(
    'button',
    {
      type: 'button',
      class: `badge ${forgotten ? 'forgotten' : 'personal'}`,
      title: `personal data of subject ${subject}`,
      onclick: () => lookUpSubject(subject),
    },
    forgotten ? 'forgotten' : 'personal',
  );
}

function eventCard(event) {
  const body = eventBody(event);
  const times = isLate(event) ? `occurred ${event.occurredAt} · recorded ${event.recordedAt}` : event.occurredAt;
  return el(
    'div',
    { class: 'event', 'data-id': event.id },
    el(
      'div',
      { class: 'event-head' },
      el('span', {}, `#${event.streamVersion}`),
      el('span', { class: 'type' }, event.type),
      isLate(event) ? el('span', { class: 'badge late', title: 'recorded after it occurred (retroactive)' }, 'late') : '',
      isCorrection(event)
        ? el('span', { class: 'badge correction', title: `corrects ${event.metadata.correctionOf.join(', ')}` }, 'correction')
        : '',
      personalBadge(event),
      el('span', { class: 'meta', title: `recorded ${event.recordedAt}` }, `pos ${event.position} · ${times}`),
    ),
    body,
  );
}

// --- data subjects: known, forgotten (GET /v1/subjects/{subject} needs the admin right) ---
async function lookUpSubject(subject) {
  $('#subject-input').value = subject;
  const status = $('#subject-status');
  status.textContent = '…';
  try {
    const response = await fetch(`/v1/subjects/${encodeURIComponent(subject)}`, {
      headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {},
    });
    const answer = await response.json().catch(() => ({}));
    if (response.status === 404) status.textContent = `${subject}: unknown (no personal data stored for it)`;
    else if (response.status === 401 || response.status === 403) status.textContent = 'needs an API key with the admin right';
    else if (!response.ok) status.textContent = answer.message || `HTTP ${response.status}`;
    else
      status.textContent = answer.forgottenAt
        ? `${subject}: forgotten at ${answer.forgottenAt}`
        : `${subject}: personal data since ${answer.createdAt}, not forgotten`;
  } catch (error) {
    status.textContent = String(error.message || error);
  }
}
$('#subject-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const subject = $('#subject-input').value.trim();
  if (subject) lookUpSubject(subject);
});

// --- time travel: the stream as of a recorded time (what was known then) or an occurred time ---
const AS_OF_LIMIT = 10000;
async function showAsOf(stream, kind, at) {
  const box = $('#stream-events');
  const status = $('#as-of-status');
  const cut = Date.parse(at);
  if (Number.isNaN(cut)) {
    status.textContent = 'not a time: use ISO-8601, e.g. 2026-11-01T00:00:00Z';
    return;
  }
  const events = [];
  let from = 1;
  while (from !== null && events.length < AS_OF_LIMIT) {
    const page = await api(`/v1/streams/${encodeURIComponent(stream)}?${new URLSearchParams({ from: String(from), limit: '1000' })}`);
    if (!page) break;
    events.push(...page.events);
    from = page.next;
  }
  const field = kind === 'recorded' ? 'recordedAt' : 'occurredAt';
  // Occurred-time view: events in the order they happened, corrections left out (they settle
  // late events in the ledger, not in what happened).
  const shown = events
    .filter((event) => Date.parse(event[field]) <= cut && (kind === 'recorded' || !isCorrection(event)))
    .sort((a, b) => (kind === 'recorded' ? b.streamVersion - a.streamVersion : Date.parse(b.occurredAt) - Date.parse(a.occurredAt)));
  box.replaceChildren(...shown.map(eventCard));
  if (!shown.length) box.append(el('p', { class: 'empty' }, 'No event yet at that time.'));
  status.textContent = `${shown.length} of ${events.length} events as of ${kind} time ${new Date(cut).toISOString()}${events.length >= AS_OF_LIMIT ? ` (first ${AS_OF_LIMIT} only)` : ''}`;
  $('#more-events').hidden = true;
}

async function showStream(stream, more = false) {
  for (const li of document.querySelectorAll('#streams li')) li.classList.toggle('selected', li.dataset.stream === stream);
  const box = $('#stream-events');
  if (!more) {
    current = { stream, next: null };
    $('#stream-title').textContent = stream;
    $('#as-of-form').hidden = false;
    $('#as-of-status').textContent = '';
    box.replaceChildren();
  }
  const params = new URLSearchParams({ direction: 'backward', limit: '50' });
  if (more && current.next) params.set('from', String(current.next));
  try {
    const [page, meta] = await Promise.all([
      api(`/v1/streams/${encodeURIComponent(stream)}?${params}`),
      more ? Promise.resolve(undefined) : showLifecycle(stream),
    ]);
    if (!page) {
      const deleted = meta?.deleted;
      box.replaceChildren(
        el(
          'p',
          { class: 'empty' },
          deleted === 'hard'
            ? `This stream was deleted for good at v${meta.version}.`
            : deleted === 'soft'
              ? `This stream was deleted at v${meta.version}; appending continues it.`
              : 'This stream does not exist.',
        ),
      );
      return;
    }
    for (const event of page.events) box.append(eventCard(event));
    current.next = page.next;
    $('#more-events').hidden = page.next === null;
  } catch (error) {
    box.replaceChildren(el('p', { class: 'empty' }, String(error.message)));
  }
}

// --- live tail of $all over server-sent events ---
function startLive(head) {
  const params = new URLSearchParams({ from: String(head) });
  if (apiKey) params.set('api_key', apiKey);
  const source = new EventSource(`/v1/all/subscribe?${params}`);
  const status = $('#live-status');
  source.onopen = () => {
    status.textContent = 'live';
    status.className = 'badge live';
    setTimeout(loadSubscriptions, 100);
  };
  source.onerror = () => {
    status.textContent = 'reconnecting';
    status.className = 'badge down';
  };
  source.onmessage = (message) => {
    const event = JSON.parse(message.data);
    const list = $('#live');
    list.prepend(
      el(
        'li',
        { class: 'fresh', 'data-position': event.position },
        el('span', { class: 'pos' }, event.position),
        el(
          'span',
          {},
          el('strong', {}, event.type),
          ' on ',
          el(
            'a',
            {
              href: '#',
              onclick: (e) => {
                e.preventDefault();
                showStream(event.streamId);
              },
            },
            event.streamId,
          ),
        ),
      ),
    );
    while (list.children.length > 200) list.lastChild.remove();
    if (event.streamId === current.stream && !$('#as-of').value.trim()) $('#stream-events').prepend(eventCard(event));
    scheduleRefresh();
  };
}

let refreshTimer;
function scheduleRefresh() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    loadStats();
    loadStreams();
  }, 300);
}

// --- subscriptions and their lag ---
// Groups the operator opened stay open across the refreshes.
const expandedGroups = new Set();

const lagText = (s) => (s.lag === null ? '–' : `${s.lag}${s.lagSeconds ? ` · ${Math.round(s.lagSeconds)} s` : ''}`);

function consumerRow(s) {
  const isGroup = s.kind === 'group';
  const open = isGroup && expandedGroups.has(s.name);
  const name = isGroup
    ? el(
        'button',
        {
          type: 'button',
          class: 'expand',
          'aria-expanded': String(open),
          'aria-label': `${open ? 'Hide' : 'Show'} the partitions of group ${s.name}`,
          onclick: () => {
            if (expandedGroups.has(s.name)) expandedGroups.delete(s.name);
            else expandedGroups.add(s.name);
            loadSubscriptions();
          },
        },
        `${open ? '▾' : '▸'} ${s.name}`,
      )
    : s.name;
  const workers = isGroup
    ? ` · group of ${s.partitions.length} partitions, ${s.owners.length} worker${s.owners.length === 1 ? '' : 's'}`
    : '';
  return el(
    'tr',
    { 'data-name': s.name, ...(isGroup ? { class: 'group' } : {}), title: s.lastError ? `last error: ${s.lastError}` : '' },
    el('td', {}, name),
    el('td', { class: 'num' }, String(s.position)),
    el('td', { class: 'num' }, lagText(s)),
    el(
      'td',
      { class: s.status === 'failed' || s.lastError ? 'bad' : '' },
      `${s.status ?? ''}${s.version === undefined ? '' : s.active ? ' · live version' : ' · not live'}${workers}${s.parked ? ` · ${s.parked} parked` : ''}`,
    ),
  );
}

/** A group's partition: its checkpoint, lag and the worker holding its lease (or that the lease ran out). */
function partitionRow(group, p) {
  const expired = p.leaseExpiresAt === null || Date.parse(p.leaseExpiresAt) <= Date.now();
  const owner = p.owner === null ? 'no owner' : expired ? `${p.owner} · lease expired` : `owner ${p.owner}`;
  return el(
    'tr',
    {
      class: 'partition',
      'data-partition': p.name,
      'data-group': group.name,
      title: p.leaseExpiresAt ? `lease until ${p.leaseExpiresAt}` : '',
    },
    el('td', {}, `#${p.partition}`),
    el('td', { class: 'num' }, String(p.position)),
    el('td', { class: 'num' }, lagText(p)),
    el('td', { class: `owner${expired ? ' bad' : ''}` }, owner),
  );
}

async function loadSubscriptions() {
  try {
    const { subscriptions } = await api('/v1/subscriptions');
    const rows = subscriptions.flatMap((s) => [
      consumerRow(s),
      ...(s.kind === 'group' && expandedGroups.has(s.name) ? s.partitions.map((p) => partitionRow(s, p)) : []),
    ]);
    // Keep the keyboard focus on a group's button when the rows are redrawn.
    const focused = document.activeElement?.closest?.('#subscriptions tr.group')?.dataset.name;
    $('#subscriptions tbody').replaceChildren(...(rows.length ? rows : [el('tr', {}, el('td', { colspan: '4', class: 'empty' }, 'none'))]));
    if (focused !== undefined) $(`#subscriptions tr.group[data-name="${CSS.escape(focused)}"] button`)?.focus();
  } catch {
    // shown in the stats line already
  }
}

// --- connectors (only when the server runs with --connectors; 404 otherwise) ---
async function loadConnectors() {
  try {
    const answer = await api('/v1/connectors');
    $('#connectors-panel').hidden = !answer;
    if (!answer) return;
    const rows = answer.connectors.map((c) =>
      el(
        'tr',
        { title: c.lastError ?? '' },
        el('td', {}, c.name),
        el('td', {}, c.sink.type),
        el('td', { class: `breaker-${c.breaker}` }, c.breaker),
        el('td', { class: 'num' }, String(c.lag)),
        el('td', { class: 'num' }, String(c.parked)),
      ),
    );
    $('#connectors tbody').replaceChildren(...rows);
  } catch {
    // shown in the stats line already
  }
}

// --- charts over the last 15 minutes (hand-drawn SVG from GET /v1/history) ---
const SVG = 'http://www.w3.org/2000/svg';
const COLORS = ['#2f6fde', '#1f9d55', '#d97706', '#a40000', '#7c3aed', '#0e7490'];
const svg = (tag, attrs = {}, ...children) => {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  node.append(...children);
  return node;
};

/** One polyline per series over a shared time axis; the legend names each with its latest value. */
function lineChart(box, times, series) {
  const width = 320;
  const height = 90;
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const x = (i) => (times.length < 2 ? width : (i / (times.length - 1)) * width);
  const y = (v) => height - (v / max) * (height - 4) - 2;
  const chart = svg(
    'svg',
    { viewBox: `0 0 ${width} ${height}`, role: 'img', preserveAspectRatio: 'none' },
    svg('line', { x1: 0, y1: height - 1, x2: width, y2: height - 1, stroke: '#e2e5ea' }),
    ...series.map((s, i) =>
      svg('polyline', {
        points: s.values.map((v, j) => `${x(j).toFixed(1)},${y(v).toFixed(1)}`).join(' '),
        fill: 'none',
        stroke: COLORS[i % COLORS.length],
        'stroke-width': 1.5,
        'data-series': s.label,
      }),
    ),
  );
  const legend = el(
    'figcaption',
    {},
    `max ${max} · `,
    ...series.map((s, i) =>
      el('span', { class: 'legend', style: `--c:${COLORS[i % COLORS.length]}` }, `${s.label} ${s.values[s.values.length - 1] ?? 0} `),
    ),
  );
  box.replaceChildren(chart, legend);
}

async function loadHistory() {
  let intervalMs = 5000;
  try {
    const history = await api('/v1/history');
    if (history) {
      intervalMs = history.intervalMs;
      drawHistory(history.samples);
    }
  } catch {
    // no read right on every stream: no charts
  }
  setTimeout(loadHistory, Math.max(1000, intervalMs));
}

function drawHistory(samples) {
  const times = samples.map((s) => s.at);
  lineChart($('#throughput'), times, [
    { label: 'appends/s', values: samples.map((s) => s.appendsPerSec) },
    { label: 'reads/s', values: samples.map((s) => s.readsPerSec) },
    { label: 'SSE clients', values: samples.map((s) => s.sseClients) },
  ]);
  const names = [...new Set(samples.flatMap((s) => Object.keys(s.lag)))].slice(0, COLORS.length);
  lineChart(
    $('#lag-chart'),
    times,
    names.map((name) => ({ label: name, values: samples.map((s) => s.lag[name] ?? 0) })),
  );
}

// --- parked events: the error and stack, replay or skip (a write right is needed) ---
async function parkedAction(path, body, what) {
  const status = $('#parked-status');
  try {
    const answer = await apiPost(path, body);
    status.textContent =
      answer.skipped !== undefined
        ? `${what}: skipped ${answer.skipped}`
        : `${what}: replayed ${answer.replayed}, still failing ${answer.failed.length}`;
  } catch (error) {
    status.textContent = `${what}: ${error.message}`;
  }
  await Promise.all([loadParked(), loadSubscriptions()]);
}

async function loadParked() {
  let answer;
  try {
    answer = await api('/v1/parked');
  } catch {
    return; // no read right on every stream: the panel stays empty
  }
  if (!answer) return;
  const { parked, replayable } = answer;
  $('#parked-count').textContent = String(parked.length);
  const button = (label, onclick, enabled = true) =>
    el(
      'button',
      enabled ? { type: 'button', onclick } : { type: 'button', disabled: '', title: 'its consumer does not run in this server' },
      label,
    );
  const items = parked.map((p) =>
    el(
      'li',
      { 'data-parked': String(p.id), 'data-consumer': p.consumer },
      el('div', {}, el('strong', {}, p.event.type), ` at ${p.position} on ${p.event.streamId} · ${p.consumer} · ${p.attempts} attempts`),
      el('div', { class: 'error' }, p.error),
      el('details', {}, el('summary', {}, 'stack'), el('pre', {}, p.stack)),
      el(
        'div',
        { class: 'actions' },
        button(
          'Replay',
          () => parkedAction('/v1/parked/replay', { consumer: p.consumer, ids: [p.id] }, `#${p.id}`),
          replayable.includes(p.consumer),
        ),
        button('Skip', () => parkedAction('/v1/parked/skip', { ids: [p.id] }, `#${p.id}`)),
      ),
    ),
  );
  const consumers = [...new Set(parked.map((p) => p.consumer))].filter((name) => replayable.includes(name));
  for (const name of consumers) {
    items.push(
      el(
        'li',
        { class: 'all' },
        button(`Replay all of ${name}`, () => parkedAction('/v1/parked/replay', { consumer: name }, name)),
      ),
    );
  }
  $('#parked').replaceChildren(...(items.length ? items : [el('li', { class: 'empty' }, 'none')]));
}

$('#search-mode').addEventListener('change', () => {
  lastStream = '';
  loadStreams();
});
$('#stream-search').addEventListener('input', () => {
  lastStream = '';
  loadStreams();
});
$('#more-streams').addEventListener('click', () => loadStreams(true));
$('#as-of-form').addEventListener('submit', (e) => {
  e.preventDefault();
  showAsOf(current.stream, $('#as-of-kind').value, $('#as-of').value.trim()).catch((error) => {
    $('#as-of-status').textContent = String(error.message);
  });
});
$('#as-of-clear').addEventListener('click', () => {
  $('#as-of').value = '';
  showStream(current.stream);
});
$('#more-events').addEventListener('click', () => showStream(current.stream, true));
$('#key-form').addEventListener('submit', (e) => {
  e.preventDefault();
  apiKey = $('#key-input').value.trim();
  sessionStorage.setItem('logline-api-key', apiKey);
  location.reload();
});

(async () => {
  await Promise.all([loadStats(), loadStreams(), loadSubscriptions(), loadConnectors(), loadParked(), loadHistory(), loadLifecycles()]);
  // The live tail starts with the last few events for context.
  let from = 0;
  try {
    // Without a valid key (on a server with keys) health reports no head: start at 0.
    const head = Number((await api('/v1/health')).headPosition);
    if (Number.isFinite(head)) from = Math.max(0, head - 20);
  } catch {}
  startLive(from);
  setInterval(loadSubscriptions, 2000);
  setInterval(loadConnectors, 2000);
  setInterval(loadParked, 5000);
  setInterval(loadLifecycles, 5000);
})();
