/**
 * The demo site's own code. It talks to Hearth only through what the script tag installed
 * (`window.hearth` and its events), the way any third-party site would.
 */
import { isVisitorAction, type Recommendation, type TrackEvent } from '../protocol/api.js';
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
  const stored = await hearth.stored(20);
  $('stored').replaceChildren(
    ...stored.map((s) => {
      const li = document.createElement('li');
      li.dataset.item = s.item;
      li.textContent = `${s.type} · ${titleOf(s.item)} (#${s.item}) · ${new Date(s.ts).toLocaleTimeString()}`;
      return li;
    }),
  );
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
  const update = registerSW({
    onNeedRefresh: () => ($('update').hidden = false),
    onOfflineReady: () => (document.body.dataset.offlineReady = 'true'),
  });
  $('update-reload').addEventListener('click', () => void update(true));
  $('update-later').addEventListener('click', () => ($('update').hidden = true));
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
