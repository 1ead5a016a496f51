/**
 * The demo site's own code. It talks to Hearth only through what the script tag installed
 * (`window.hearth` and its events), the way any third-party site would.
 */
import {
  isVisitorAction,
  type Ledger,
  type LedgerItem,
  type Recommendation,
  type SentRequest,
  type TrackEvent,
} from '../protocol/api.js';
import type { CatalogDocument, CatalogItem } from '../protocol/catalog.js';
import { fnv1a32 } from '../protocol/hash.js';
import type { ModelManifest } from '../protocol/manifest.js';
import type { Hearth } from '../src/index.js';
import { registerSW } from 'virtual:pwa-register';

type HearthGlobal = Hearth & ((...args: unknown[]) => unknown);

const hearth = (window as unknown as { hearth?: HearthGlobal }).hearth;
const endpoint =
  document.querySelector<HTMLScriptElement>('script[data-endpoint]')?.dataset.endpoint;
const $ = (id: string): HTMLElement => document.getElementById(id)!;

/** The server's catalogue by item id (GET /v1/catalog), as any site's page would read it. */
const catalog = new Map<string, CatalogItem>();
const titleOf = (id: string): string => catalog.get(id)?.title ?? id;

/** What a card shows of an item: the catalogue's entry, or what a recommendation carries. */
type Shown = Pick<CatalogItem, 'id'> & Partial<Pick<CatalogItem, 'title' | 'image' | 'category'>>;

function card(shown: Shown, detail: string): HTMLLIElement {
  const item = { ...catalog.get(shown.id), ...shown };
  const li = document.createElement('li');
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'card';
  button.dataset.hearthItem = item.id; // Hearth captures clicks on this attribute.
  // A colour per item, so cards without a cover still tell apart.
  button.style.setProperty('--hue', String((fnv1a32(item.id) >>> 13) % 360));
  if (item.image) {
    const img = document.createElement('img');
    img.src = item.image;
    img.alt = ''; // decorative: the title says what the item is
    img.loading = 'lazy';
    button.append(img);
  }
  const text = document.createElement('span');
  text.className = 'text';
  if (item.category) {
    const category = document.createElement('span');
    category.className = 'category';
    category.textContent = item.category;
    text.append(category);
  }
  const title = document.createElement('span');
  title.className = 'title';
  title.textContent = item.title ?? item.id;
  text.append(title);
  if (detail) {
    const small = document.createElement('small');
    small.textContent = detail;
    text.append(small);
  }
  button.append(text);
  li.append(button);
  return li;
}

/** Why a card is in the list, in the visitor's words. */
function because(r: Recommendation): string {
  if (!r.reason) return 'Popular right now';
  return `Because you viewed ${r.reason.title ?? titleOf(r.reason.item)}`;
}

async function renderRecs(): Promise<void> {
  if (!hearth) return;
  const recs = await hearth.recommend({ k: 6, explain: true });
  $('recs').replaceChildren(
    ...recs.map((r) =>
      card(
        {
          id: r.item,
          ...(r.title ? { title: r.title } : {}),
          ...(r.image ? { image: r.image } : {}),
        },
        because(r),
      ),
    ),
  );
  $('recs').dataset.items = recs.map((r) => r.item).join(',');
}

async function renderPanel(): Promise<void> {
  if (!hearth) return;
  const status = await hearth.status();
  const rows: [string, string][] = [
    ['Backend', status.backend ?? 'none'],
    ['Model version', String(status.modelVersion)],
    ['Storage', status.storage],
    ['Interactions', String(status.interactions)],
    ['Uploads', status.uploads.enabled ? `on, ${status.uploads.sent} sent` : 'off'],
  ];
  $('engine-status').replaceChildren(
    ...rows.flatMap(([k, v]) => {
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      dd.textContent = v;
      dd.dataset.field = k.toLowerCase().replaceAll(' ', '-');
      return [dt, dd];
    }),
  );
  renderLedger(await hearth.ledger());
}

const el = <K extends keyof HTMLElementTagNameMap>(
  tag: K,
  text = '',
  className = '',
): HTMLElementTagNameMap[K] => {
  const node = document.createElement(tag);
  node.textContent = text;
  if (className) node.className = className;
  return node;
};

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

const bytes = (n: number): string =>
  n < 1024
    ? `${n} B`
    : n < 1024 ** 2
      ? `${(n / 1024).toFixed(1)} KB`
      : `${(n / 1024 ** 2).toFixed(2)} MB`;

/** What each kind of request was for, in the visitor's words. */
const REQUEST_WORDS: Record<SentRequest['kind'], string> = {
  model: 'Checked for a new model',
  weights: 'Downloaded the model',
  catalog: 'Read the catalogue',
  join: 'Joined a round',
  update: 'Sent a clipped model update',
  secure: 'Secure round step',
  other: 'Loaded Hearth’s code',
};

function storedItem(entry: LedgerItem): HTMLLIElement {
  const li = el('li');
  li.dataset.item = entry.item;
  const what = el('span', '', 'what');
  what.append(entry.title ?? titleOf(entry.item));
  const types = Object.entries(entry.types)
    .map(([type, n]) => plural(n, type))
    .join(' · ');
  what.append(el('span', `${types} · last ${clock(entry.last)}`, 'types'));
  const remove = el('button', 'Delete');
  remove.type = 'button';
  remove.dataset.forget = entry.item;
  remove.setAttribute(
    'aria-label',
    `Delete ${entry.title ?? titleOf(entry.item)} from this device`,
  );
  li.append(what, remove);
  return li;
}

const clock = (ts: number): string => new Date(ts).toLocaleTimeString([], { hour12: false });

function requestRow(request: SentRequest): HTMLTableRowElement {
  const tr = el('tr');
  tr.dataset.kind = request.kind;
  const { pathname } = new URL(request.url);
  const what = el('td', REQUEST_WORDS[request.kind]);
  what.append(el('small', `${request.method} ${pathname}`));
  tr.append(
    el('td', clock(request.ts)),
    what,
    el('td', bytes(request.sent)),
    el('td', request.status === 0 ? 'no reply' : bytes(request.received)),
  );
  return tr;
}

/** epsilon after each round taken part in, as a small line chart (plain SVG). */
function drawEpsilon(curve: readonly number[]): void {
  const svg = $('epsilon-chart') as unknown as SVGSVGElement;
  const finite = curve.filter(Number.isFinite);
  svg.toggleAttribute('hidden', finite.length === 0);
  if (finite.length === 0) return;
  const [w, h, pad] = [300, 96, 18];
  const top = Math.max(...finite) * 1.1 || 1;
  const x = (i: number) =>
    pad + (finite.length === 1 ? 0 : (i / (finite.length - 1)) * (w - 2 * pad));
  const y = (e: number) => h - pad - (e / top) * (h - 2 * pad);
  const ns = 'http://www.w3.org/2000/svg';
  const node = (tag: string, attrs: Record<string, string | number>, text = '') => {
    const n = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
    n.textContent = text;
    return n;
  };
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  const points = finite.map((e, i) => `${x(i)},${y(e)}`).join(' ');
  svg.replaceChildren(
    node('line', {
      x1: pad,
      y1: h - pad,
      x2: w - pad,
      y2: h - pad,
      stroke: 'currentColor',
      'stroke-opacity': 0.3,
    }),
    node('polyline', { points, fill: 'none', stroke: 'currentColor', 'stroke-width': 2 }),
    ...finite.map((e, i) => node('circle', { cx: x(i), cy: y(e), r: 3, fill: 'currentColor' })),
    node('text', { x: pad, y: h - 4 }, 'round 1'),
    node('text', { x: w - pad, y: h - 4, 'text-anchor': 'end' }, `round ${finite.length}`),
    node('text', { x: pad, y: 10 }, `ε ${top.toFixed(2)}`),
  );
}

/** What the server can and cannot see, for the way this site's rounds aggregate. */
function serverView(ledger: Ledger): string {
  const stays =
    'Your interactions (the list above), your sessions and their times never leave this browser.';
  if (ledger.aggregation === 'secure') {
    return `${stays} An update leaves it only masked, in a secure aggregation round: the server can unmask only the sum of at least the round’s minimum number of devices, with their noise in it, never this device’s update alone. It does see that this browser took part, when, and the bytes in the table above.`;
  }
  if (ledger.aggregation === 'plaintext') {
    return `${stays} This server runs in plaintext mode: it receives each update this device sends (a clipped change to the model, without item ids or times), and an update can reveal to it which items you interacted with. The noise protects what it publishes, not what it receives.`;
  }
  return stays;
}

function renderLedger(ledger: Ledger): void {
  $('stored').replaceChildren(...ledger.items.map(storedItem));
  const interactions = ledger.items.reduce((n, item) => n + item.count, 0);
  $('stored-summary').textContent =
    `${plural(interactions, 'interaction')} with ${plural(ledger.items.length, 'item')}. Never sent anywhere.`;
  const sent = ledger.requests.reduce((n, r) => n + r.sent, 0);
  const received = ledger.requests.reduce((n, r) => n + r.received, 0);
  $('requests-summary').textContent =
    ledger.requests.length === 0
      ? 'None yet.'
      : `${plural(ledger.requests.length, 'request')}: ${bytes(sent)} sent, ${bytes(received)} received (the newest ${ledger.requestsKept} are kept).`;
  $('requests')
    .querySelector('tbody')!
    .replaceChildren(...ledger.requests.map(requestRow));
  const { epsilon, delta, curve } = ledger.privacy;
  const rounds = plural(ledger.rounds.length, 'round');
  $('epsilon').textContent =
    ledger.rounds.length === 0
      ? 'None yet: nothing learned from this device has been published.'
      : Number.isFinite(epsilon)
        ? `${rounds}: ε = ${epsilon.toFixed(2)} at δ = ${delta.toExponential()}, counted as if everyone knew this device took part${ledger.aggregation === 'plaintext' ? ' (it holds for what the server publishes; the server itself saw each update)' : ''}.`
        : `${rounds}, at least one without noise: no ε bound (this server adds none).`;
  drawEpsilon(curve);
  $('server-view').textContent = serverView(ledger);
}

async function renderCatalog(): Promise<void> {
  if (!endpoint) return;
  // The server's catalogue (npm start loads the demo's generated one); without one, the model's ids.
  const response = await fetch(new URL('/v1/catalog', endpoint));
  let ids: string[];
  if (response.ok) {
    const served = (await response.json()) as CatalogDocument;
    for (const item of served.items) catalog.set(item.id, item);
    ids = served.items.slice(0, 24).map((item) => item.id);
  } else {
    const manifest = (await (await fetch(new URL('/v1/model', endpoint))).json()) as ModelManifest;
    ids = manifest.popular.slice(0, 24).map((i) => manifest.itemIds[i]!);
  }
  $('catalog').replaceChildren(...ids.map((id) => card({ id }, '')));
}

function showViewing(id: string): void {
  $('viewing').hidden = false;
  $('viewing-item').textContent = `${titleOf(id)} (#${id})`;
}

/**
 * The service worker (vite.config.ts demoPwa): the site works offline once it has been visited, and
 * a new deployment waits for the visitor's yes instead of swapping files under an open page.
 */
function offerUpdates(): void {
  registerSW({
    onNeedRefresh: () => ($('update').hidden = false),
    onOfflineReady: () => (document.body.dataset.offlineReady = 'true'),
  });
  $('update-reload').addEventListener('click', () => void takeUpdate());
  $('update-later').addEventListener('click', () => ($('update').hidden = true));
}

/**
 * The visitor said yes: the waiting service worker is told to take over, and the page reloads once
 * it controls the page. The page listens for that itself: the plugin's own reload waits for an
 * event that workbox-window marks as an update only in some timings, so on a busy machine a click
 * could leave the prompt up for good (vite-pwa/vite-plugin-pwa#789). With no worker waiting (another
 * tab took the update already), the page is behind its controller and reloads at once.
 *
 * Chromium can give up an activation (reported when a fetch restarts the outgoing worker while it
 * is being stopped), and the new worker then stays waiting until something tries again: seen under
 * load in e2e/pwa.spec.ts, the worker still `installed` 160 s after the click. Each skipWaiting()
 * tries the activation again, so the page asks every 2 s; after 20 s it reloads anyway, which
 * frees the outgoing worker of this page's fetches, and a worker still waiting is offered again.
 */
async function takeUpdate(): Promise<void> {
  const waiting = (await navigator.serviceWorker.getRegistration())?.waiting;
  if (!waiting) {
    window.location.reload();
    return;
  }
  // What the generated service worker listens for to skip waiting (vite-plugin-pwa, prompt mode).
  const skip = () => waiting.postMessage({ type: 'SKIP_WAITING' });
  const reload = () => {
    clearInterval(again);
    clearTimeout(giveUp);
    window.location.reload();
  };
  const again = setInterval(skip, 2_000);
  const giveUp = setTimeout(reload, 20_000);
  navigator.serviceWorker.addEventListener('controllerchange', reload, { once: true });
  // The worker's own activation says the same, should the controller's change pass unseen.
  waiting.addEventListener('statechange', () => {
    if (waiting.state === 'activated') reload();
  });
  skip();
}

async function main(): Promise<void> {
  offerUpdates();
  if (!hearth) return;
  document.addEventListener('click', (event) => {
    const id = (event.target as Element).closest<HTMLElement>('[data-hearth-item]')?.dataset
      .hearthItem;
    if (id) showViewing(id);
  });
  // The list changes when the visitor acts; what the page merely shows (views) only updates the panel.
  window.addEventListener('hearth-track', (event) => {
    const acted = isVisitorAction((event as CustomEvent<TrackEvent>).detail);
    void (acted ? renderRecs() : Promise.resolve()).then(renderPanel);
  });
  $('share').addEventListener('click', async () => {
    $('share-result').textContent = 'Learning on this device…';
    const result = await hearth.sync();
    $('share-result').textContent =
      result.status === 'uploaded'
        ? `Shared a clipped update of ${result.bytes} bytes (model v${result.modelVersion}).`
        : `Not shared: ${result.reason ?? result.status}`;
    await renderRecs();
    await renderPanel();
  });
  // Delete one item: its interactions, and what this device learned from them.
  $('stored').addEventListener('click', async (event) => {
    const id = (event.target as Element).closest<HTMLElement>('[data-forget]')?.dataset.forget;
    if (!id) return;
    await hearth.forget(id);
    $('share-result').textContent = `Deleted ${titleOf(id)} from this device.`;
    await renderRecs();
    await renderPanel();
  });
  $('forget').addEventListener('click', async () => {
    await hearth.forget();
    $('viewing').hidden = true;
    $('share-result').textContent = 'Everything Hearth kept on this device is erased.';
    await renderRecs();
    await renderPanel();
  });
  await renderCatalog().catch((error: unknown) => {
    $('share-result').textContent = `The catalogue could not be loaded: ${String(error)}`;
  });
  try {
    await hearth.ready;
  } catch (error) {
    $('share-result').textContent = `Hearth could not start: ${String(error)}`;
    return;
  }
  await renderRecs();
  await renderPanel();
  // After the first render: what the page says is ready is on screen.
  document.body.dataset.hearth = 'ready';
}

void main();
