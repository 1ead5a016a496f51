/**
 * `<hearth-recs>`: a ready-made recommendation list (built as the ES module `hearth-recs.js`).
 *
 *   <script defer src="https://cdn.example/hearth/hearth.js" data-endpoint="…"></script>
 *   <script type="module" src="https://cdn.example/hearth/hearth-recs.js"></script>
 *   <hearth-recs k="6" loading="lazy"></hearth-recs>
 *
 * Titles, links and images come with the recommendations from the server's catalogue
 * (`GET /v1/catalog`); a `catalog="/catalog.json"` attribute (or the `catalog` property) overrides
 * them per item, for pages whose server has no catalogue.
 * It uses the page's `window.hearth` (installed by the loader, which may arrive later: it waits for
 * `hearth-ready`), so it costs the loader nothing. Shadow DOM with `part`s and `--hearth-*` custom
 * properties; a reserved min-height so nothing shifts when results arrive; an `<ol>` and a polite
 * status region; it never moves focus. Clicks inside a shadow root are retargeted to the host, which
 * the loader's capture cannot see through, so the element tracks its own clicks and then dispatches
 * `hearth-track` on window as the loader does, which every list on the page (this one included)
 * re-renders on.
 */
import { isVisitorAction, type Recommendation, type TrackEvent } from '../protocol/api.js';
import type { ErrorCode } from '../protocol/errors.js';
import type { Hearth } from './client.js';
import { normalizeCatalog, parseK, rowsFor, safeUrl, type Catalog } from './recs-util.js';

export type { Catalog, CatalogEntry } from './recs-util.js';

/** Detail of `hearth-click`: rank is 1-based, reason as `recommend({ explain: true })` gave it. */
export interface HearthClickDetail {
  readonly itemId: string;
  readonly rank: number;
  readonly reason?: Recommendation['reason'];
}

const STYLE = `
:host {
  display: block;
  font: var(--hearth-font, inherit);
  color: var(--hearth-color, inherit);
  --_gap: var(--hearth-gap, 0.75rem);
  --_row: var(--hearth-row-height, 5rem);
}
:host([hidden]) { display: none; }
[part~='list'] {
  display: grid;
  grid-template-columns: repeat(var(--hearth-columns, 3), minmax(0, 1fr));
  grid-auto-rows: var(--_row);
  gap: var(--_gap);
  margin: 0;
  padding: 0;
  list-style: none;
  min-height: calc(var(--_rows, 2) * var(--_row) + (var(--_rows, 2) - 1) * var(--_gap));
}
[part~='item'] { min-width: 0; overflow: hidden; }
[part~='link'] {
  box-sizing: border-box;
  display: flex;
  gap: 0.5rem;
  align-items: center;
  width: 100%;
  height: 100%;
  padding: 0.5rem;
  border: 1px solid var(--hearth-border, #0002);
  border-radius: var(--hearth-radius, 0.5rem);
  background: var(--hearth-background, transparent);
  color: inherit;
  font: inherit;
  text-align: start;
  text-decoration: none;
  cursor: pointer;
}
[part~='link']:focus-visible { outline: 2px solid var(--hearth-accent, #1a73e8); outline-offset: 2px; }
[part~='image'] {
  flex: none;
  height: 100%;
  aspect-ratio: 1;
  object-fit: cover;
  border-radius: calc(var(--hearth-radius, 0.5rem) / 2);
}
.text { display: flex; flex-direction: column; min-width: 0; }
[part~='title'], [part~='reason'] { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
[part~='reason'] { font-size: 0.85em; opacity: 0.75; }
.sr {
  position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; border: 0;
}
[name='empty'] { display: none; }
:host([data-state='empty']) [name='empty'] { display: block; }
:host([data-state='empty']) [part~='list'] { display: none; }
`;

type Api = Pick<Hearth, 'ready' | 'recommend' | 'track'>;

function pageApi(): Api | undefined {
  const h = (window as { hearth?: Partial<Api> }).hearth;
  return h && typeof h.recommend === 'function' && h.ready ? (h as Api) : undefined;
}

/** Resolves with the loader's API once it is ready, however late the loader arrives. */
function whenHearth(): Promise<Api> {
  const now = pageApi();
  if (now) return now.ready.then(() => now);
  return new Promise((resolve, reject) => {
    const done = (): void => {
      window.removeEventListener('hearth-ready', onReady);
      window.removeEventListener('hearth-error', onError);
    };
    const onReady = (): void => {
      const api = pageApi();
      if (!api) return;
      done();
      resolve(api);
    };
    const onError = (event: Event): void => {
      if (event.target !== window) return; // a <hearth-recs> error bubbling up, not the loader's
      done();
      reject((event as CustomEvent<{ code?: string }>).detail);
    };
    window.addEventListener('hearth-ready', onReady);
    window.addEventListener('hearth-error', onError);
  });
}

export class HearthRecsElement extends HTMLElement {
  static readonly observedAttributes = ['k', 'catalog'];

  #root: ShadowRoot;
  #list: HTMLOListElement;
  #status: HTMLElement;
  #catalog: Record<string, { title?: string; url?: string; image?: string }> = {};
  #recs: readonly Recommendation[] = [];
  #visible = false;
  #connected = false;
  #loaded = false;
  #token = 0;
  #observer: IntersectionObserver | undefined;
  #fetched: string | null = null;

  constructor() {
    super();
    this.#root = this.attachShadow({ mode: 'open' });
    const style = document.createElement('style');
    style.textContent = STYLE;
    const heading = document.createElement('slot');
    heading.name = 'heading';
    this.#list = document.createElement('ol');
    this.#list.setAttribute('part', 'list');
    // Safari drops list semantics under `list-style: none`; say it explicitly.
    this.#list.setAttribute('role', 'list');
    const empty = document.createElement('slot');
    empty.name = 'empty';
    empty.textContent = 'No recommendations yet.';
    this.#status = document.createElement('p');
    this.#status.className = 'sr';
    this.#status.setAttribute('role', 'status');
    this.#status.setAttribute('aria-live', 'polite');
    this.#root.append(style, heading, this.#list, empty, this.#status);
    this.#root.addEventListener('click', (event) => this.#onClick(event));
  }

  /** Titles, links and images by item id; setting it re-renders with the current results. */
  get catalog(): Catalog {
    return this.#catalog;
  }

  set catalog(value: Catalog) {
    this.#catalog = { ...this.#catalog, ...normalizeCatalog(value) };
    if (this.#loaded) this.#draw();
  }

  /** The items currently shown, in rank order. */
  get items(): readonly Recommendation[] {
    return this.#recs;
  }

  connectedCallback(): void {
    this.#connected = true;
    this.#reserve();
    window.addEventListener('hearth-track', this.#onTrack);
    window.addEventListener('hearth-recs-catalog', this.#onCatalog);
    this.#loadCatalog();
    if (this.getAttribute('loading') === 'lazy' && typeof IntersectionObserver === 'function') {
      this.#observer = new IntersectionObserver((entries) => {
        if (!entries.some((e) => e.isIntersecting)) return;
        this.#observer?.disconnect();
        this.#visible = true;
        void this.refresh();
      });
      this.#observer.observe(this);
    } else {
      this.#visible = true;
      void this.refresh();
    }
  }

  disconnectedCallback(): void {
    this.#connected = false;
    this.#observer?.disconnect();
    this.#token++;
    window.removeEventListener('hearth-track', this.#onTrack);
    window.removeEventListener('hearth-recs-catalog', this.#onCatalog);
  }

  attributeChangedCallback(name: string, old: string | null, value: string | null): void {
    if (!this.#connected || old === value) return;
    if (name === 'catalog') this.#loadCatalog();
    else {
      this.#reserve();
      void this.refresh();
    }
  }

  /** Asks Hearth again and re-renders (what a visitor's `hearth-track` click triggers). */
  async refresh(): Promise<void> {
    if (!this.#connected || !this.#visible) return;
    const token = ++this.#token;
    try {
      const api = await whenHearth();
      const recs = await api.recommend({ k: parseK(this.getAttribute('k')), explain: true });
      if (token !== this.#token) return;
      this.#recs = recs;
      this.#draw();
      this.#status.textContent = recs.length
        ? `${recs.length} recommendations ${this.#loaded ? 'updated' : 'loaded'}`
        : 'No recommendations yet';
      if (!this.#loaded) {
        this.#loaded = true;
        this.#emit('hearth-load', { items: recs.map((r) => r.item) });
      }
    } catch (error) {
      if (token !== this.#token) return;
      const code: ErrorCode =
        (error as { code?: ErrorCode } | undefined)?.code ?? 'HEARTH_E_NOT_READY';
      this.dataset.state = 'empty';
      this.#emit('hearth-error', { code });
    }
  }

  /** Redraws after what the visitor did; a view or dwell elsewhere on the page leaves it alone. */
  #onTrack = (event: Event): void => {
    if (isVisitorAction((event as CustomEvent<TrackEvent>).detail)) void this.refresh();
  };

  #onCatalog = (event: Event): void => {
    this.catalog = (event as CustomEvent<Catalog>).detail;
  };

  #emit(name: string, detail: unknown): boolean {
    return this.dispatchEvent(
      new CustomEvent(name, { detail, bubbles: true, composed: true, cancelable: true }),
    );
  }

  /** min-height from k and the row height, so the page does not shift when results arrive. */
  #reserve(): void {
    const columns = Number(getComputedStyle(this).getPropertyValue('--hearth-columns') || 3);
    const rows = rowsFor(parseK(this.getAttribute('k')), columns);
    this.style.setProperty('--_rows', String(rows));
  }

  #loadCatalog(): void {
    const src = this.getAttribute('catalog');
    if (!src || src === this.#fetched) return;
    this.#fetched = src;
    fetch(new URL(src, document.baseURI))
      .then((res) => (res.ok ? res.json() : Promise.reject(new Error(String(res.status)))))
      .then((json: unknown) => {
        if (this.#fetched === src) this.catalog = json as Catalog;
      })
      // A catalogue that cannot be fetched is a misconfigured attribute; titles fall back to ids.
      .catch(() => this.#emit('hearth-error', { code: 'HEARTH_E_CONFIG' }));
  }

  /** Renders #recs, reusing each position's nodes so a focused link keeps its focus. */
  #draw(): void {
    this.#reserve();
    this.dataset.state = this.#recs.length ? 'ready' : 'empty';
    const items = this.#list.children;
    this.#recs.forEach((rec, i) => {
      // The page's own catalogue attribute first, else what the server's catalogue said.
      const entry = this.#catalog[rec.item] ?? rec;
      const href = safeUrl(entry.url, document.baseURI);
      let li = items[i] as HTMLLIElement | undefined;
      let link = li?.firstElementChild as HTMLElement | null | undefined;
      if (!li || !link || link.localName !== (href ? 'a' : 'button')) {
        const fresh = document.createElement('li');
        fresh.setAttribute('part', 'item');
        fresh.setAttribute('role', 'listitem');
        link = document.createElement(href ? 'a' : 'button');
        link.setAttribute('part', 'link');
        if (!href) (link as HTMLButtonElement).type = 'button';
        fresh.append(link);
        if (li) li.replaceWith(fresh);
        else this.#list.append(fresh);
        li = fresh;
      }
      if (href) link.setAttribute('href', href);
      link.dataset.hearthItem = rec.item;
      link.dataset.rank = String(i + 1);
      li.toggleAttribute('data-explore', rec.explore === true);
      const parts: Node[] = [];
      const image = safeUrl(entry.image, document.baseURI);
      if (image) {
        const img = document.createElement('img');
        img.setAttribute('part', 'image');
        img.alt = '';
        img.loading = 'lazy';
        img.decoding = 'async';
        img.src = image;
        parts.push(img);
      }
      const text = document.createElement('span');
      text.className = 'text';
      const title = document.createElement('span');
      title.setAttribute('part', 'title');
      title.textContent = entry.title ?? rec.item;
      text.append(title);
      if (rec.reason) {
        const reason = document.createElement('span');
        reason.setAttribute('part', 'reason');
        const because =
          this.#catalog[rec.reason.item]?.title ?? rec.reason.title ?? rec.reason.item;
        reason.textContent = `Because you viewed ${because}`;
        text.append(reason);
      }
      parts.push(text);
      link.replaceChildren(...parts);
    });
    while (items.length > this.#recs.length) items[items.length - 1]!.remove();
  }

  #onClick(event: Event): void {
    const link = event
      .composedPath()
      .find((n): n is HTMLElement => n instanceof HTMLElement && 'hearthItem' in n.dataset);
    if (!link) return;
    const itemId = link.dataset.hearthItem!;
    const rank = Number(link.dataset.rank);
    const reason = this.#recs[rank - 1]?.reason;
    const detail: HearthClickDetail = reason ? { itemId, rank, reason } : { itemId, rank };
    // A site that handles the click itself (a client-side router) cancels `hearth-click`.
    if (!this.#emit('hearth-click', detail)) event.preventDefault();
    const api = pageApi();
    if (!api) return;
    const track: TrackEvent = { type: 'click', item: itemId };
    api.track(track).then(
      () => window.dispatchEvent(new CustomEvent('hearth-track', { detail: track })),
      (error: { code?: ErrorCode }) =>
        this.#emit('hearth-error', { code: error?.code ?? 'HEARTH_E_NOT_READY' }),
    );
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'hearth-recs': HearthRecsElement;
  }
}

if (!customElements.get('hearth-recs')) customElements.define('hearth-recs', HearthRecsElement);
