/* global document, fetch, history, location, sessionStorage, setInterval, URL, URLSearchParams */
/**
 * The dashboard page's script: reads /v1/stats and draws it with uPlot, served by this server from
 * node_modules (no CDN: an operator's dashboard must not depend on, or leak to, a third party). Every
 * chart has its numbers in a table below too, for screen readers and for copying.
 */
import uPlot from './uplot.esm.js';

// Resolved against this module, not the page: the page is /dashboard, whose base is '/'.
const STATS_URL = new URL('../v1/stats', import.meta.url);
const REFRESH_MS = 15_000;

// The operator token, given once as /dashboard#token=… (a fragment never reaches a server or a log)
// and kept for this tab only. Without it the server answers the public view.
const TOKEN_KEY = 'hearth-operator-token';
const fragment = new URLSearchParams(location.hash.slice(1)).get('token');
if (fragment) {
  sessionStorage.setItem(TOKEN_KEY, fragment);
  history.replaceState(null, '', location.pathname);
}
const token = sessionStorage.getItem(TOKEN_KEY);
const WIDTH = () => Math.min(900, document.querySelector('main').clientWidth || 900);

const seconds = (iso) => (iso ? Date.parse(iso) / 1000 : null);
const fmt = (n, digits = 3) => (n === null || n === undefined ? '–' : Number(n).toFixed(digits));

const plots = new Map();

/** Draws (or redraws) one chart; an empty series shows a line of text instead of empty axes. */
function chart(id, title, series, data, options = {}) {
  const host = document.getElementById(id);
  plots.get(id)?.destroy();
  plots.delete(id);
  host.textContent = '';
  if (data[0].length === 0) {
    host.textContent = `${title}: no data yet.`;
    return;
  }
  const plot = new uPlot(
    {
      title,
      width: WIDTH(),
      height: 220,
      series: [{ label: options.xLabel ?? 'x' }, ...series],
      scales: { x: { time: options.time ?? false } },
      axes: [{}, { label: options.yLabel ?? '' }],
    },
    data,
    host,
  );
  plots.set(id, plot);
}

function table(caption, header, rows) {
  const t = document.createElement('table');
  const c = t.createCaption();
  c.textContent = caption;
  const head = t.createTHead().insertRow();
  for (const h of header) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = h;
    head.append(th);
  }
  const body = t.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    for (const cell of row) tr.insertCell().textContent = String(cell);
  }
  const details = document.createElement('details');
  const summary = document.createElement('summary');
  summary.textContent = caption;
  details.append(summary, t);
  return details;
}

function render(stats) {
  const published = stats.rounds.filter((r) => r.status === 'published' && r.publishedAt);
  const last = stats.epsilon.at(-1);
  document.getElementById('summary').textContent =
    `${published.length} published of ${stats.rounds.length} rounds shown; m = ${stats.minCohort}, ` +
    `S = ${stats.clipNorm}, noise ${stats.noise}` +
    (last ? `, epsilon ${last.epsilon === null ? '∞ (no noise)' : fmt(last.epsilon)}.` : '.');

  chart(
    'chart-rounds',
    'Published rounds',
    [{ label: 'round', stroke: '#3465a4', points: { show: true } }],
    [published.map((r) => seconds(r.publishedAt)), published.map((r) => r.round)],
    { time: true, xLabel: 'time', yLabel: 'round' },
  );
  chart(
    'chart-participants',
    'Participants per round',
    [{ label: 'updates', stroke: '#4e9a06', points: { show: true } }],
    [stats.rounds.map((r) => r.round), stats.rounds.map((r) => r.participants)],
    { xLabel: 'round', yLabel: 'updates' },
  );
  const { edges, counts } = stats.norms ?? { edges: [0], counts: [] };
  document.getElementById('norm-summary').textContent = stats.norms
    ? `${stats.norms.count} updates; ${fmt((stats.norms.clippedFraction ?? 0) * 100, 1)}% ` +
      `arrived with a norm above S = ${stats.clipNorm} and were re-clipped.`
    : 'Norms, open rounds and exact times are shown with the operator token only: open this ' +
      'page as /dashboard#token=<HEARTH_OPERATOR_TOKEN>.';
  chart(
    'chart-norms',
    'Received norm histogram',
    [{ label: 'updates', stroke: '#75507b', fill: 'rgba(117,80,123,0.3)' }],
    [edges.slice(0, -1).map((e, i) => (e + edges[i + 1]) / 2), counts],
    { xLabel: 'norm', yLabel: 'updates' },
  );
  const withUpdates = stats.rounds.filter((r) => r.participants > 0);
  chart(
    'chart-clipped',
    'Clipped fraction and median norm per round',
    [
      { label: 'clipped fraction', stroke: '#cc0000' },
      { label: 'median norm', stroke: '#3465a4' },
    ],
    [
      withUpdates.map((r) => r.round),
      withUpdates.map((r) => r.clippedFraction),
      withUpdates.map((r) => r.medianNorm),
    ],
    { xLabel: 'round' },
  );
  const eps = stats.epsilon.filter((e) => e.publishedAt && e.epsilon !== null);
  chart(
    'chart-epsilon',
    stats.noise === 'on' ? 'Cumulative epsilon' : 'Cumulative epsilon (noise off: unbounded)',
    [{ label: 'epsilon', stroke: '#c4a000', points: { show: true } }],
    [eps.map((e) => seconds(e.publishedAt)), eps.map((e) => e.epsilon)],
    { time: true, xLabel: 'time', yLabel: 'epsilon' },
  );
  const hr = stats.hitRate.versions.filter((v) => v.hr !== null);
  chart(
    'chart-hr',
    stats.hitRate.configured ? `HR@${stats.hitRate.k}` : 'No validation set (--validation)',
    [{ label: `HR@${stats.hitRate.k}`, stroke: '#ce5c00', points: { show: true } }],
    [hr.map((v) => v.version), hr.map((v) => v.hr)],
    { xLabel: 'version', yLabel: 'HR' },
  );

  const tables = document.getElementById('tables');
  tables.replaceChildren(
    table(
      'Rounds',
      ['round', 'status', 'opened', 'published', 'version', 'updates', 'clipped', 'median norm'],
      stats.rounds.map((r) => [
        r.round,
        r.status,
        r.openedAt ?? '–',
        r.publishedAt ?? '–',
        r.publishedVersion ?? '–',
        r.participants,
        fmt(r.clippedFraction),
        fmt(r.medianNorm, 4),
      ]),
    ),
    table(
      'Norm histogram',
      ['from', 'to', 'updates'],
      counts.map((c, i) => [fmt(edges[i], 4), fmt(edges[i + 1], 4), c]),
    ),
    table(
      'Epsilon after each published round',
      ['round', 'version', 'published', 'epsilon'],
      stats.epsilon.map((e) => [e.round, e.version, e.publishedAt ?? '–', fmt(e.epsilon)]),
    ),
    table(
      `HR@${stats.hitRate.k} per version`,
      ['version', `HR@${stats.hitRate.k}`],
      stats.hitRate.versions.map((v) => [v.version, fmt(v.hr, 4)]),
    ),
  );
}

async function refresh() {
  try {
    const res = await fetch(STATS_URL, {
      cache: 'no-store',
      ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}),
    });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    render(await res.json());
  } catch (error) {
    document.getElementById('summary').textContent = `Could not load statistics: ${error.message}`;
  }
}

await refresh();
setInterval(refresh, REFRESH_MS);
