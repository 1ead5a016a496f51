/**
 * Automatic interaction capture on the host page, built as the ES module `hearth-capture.js` (the
 * loader imports it after it starts; the ESM entry bundles it). Elements marked
 * `data-hearth-item="ID"` are watched:
 * - click: a click on the element or anything inside it;
 * - view: at least half of it (or half of the viewport, for an element taller than that) visible
 *   for VIEW_MS without a break while the page is visible — once per item per page (a list the
 *   site re-renders does not view its items again);
 * - dwell: the same visibility adding up to DWELL_MS on one page (reading a product page, say) —
 *   once per item per page.
 * Items inside a recommendation slot (`data-hearth-slot` on any ancestor, or `<hearth-recs>`) are
 * what Hearth itself put on screen: being shown there is an impression, not an interaction, so only
 * a click on them is reported. (Counting them as views fed the session its own recommendations:
 * each redraw was viewed, changed the session and redrew the list again.)
 * Single-page-app navigations (the Navigation API, or history.pushState / replaceState / popstate
 * where it is missing) start a new page: an item still on screen can be viewed again. Elements added
 * later are picked up by a MutationObserver.
 * An item the visitor erases (`hearth.forget(item)`, or everything with `forget()`) is not brought
 * back by what was on screen before: every item of it that was on screen on this page has its view
 * and dwell spent for the page (Capture.forgot), so only a click, or a later page, captures it again.
 *
 * Nothing here blocks: one passive delegated click listener (the site's own handlers and
 * stopPropagation are untouched), observers and timers. The page's DOM is never modified; the history
 * methods, when wrapped, are restored by the returned stop function.
 */
import type { TrackEvent } from '../protocol/api.js';

/** Continuous visibility that counts as a view. */
export const VIEW_MS = 1000;
/** Visibility on one page, added up, that counts as dwelling on an item. */
export const DWELL_MS = 10_000;

const SELECTOR = '[data-hearth-item]';
/** Where the page shows Hearth's recommendations (README, "What is captured"). */
export const SLOT_SELECTOR = '[data-hearth-slot], hearth-recs';

/** What the visitor has done with one element on the current page. */
interface Watch {
  /** Whether the observer last saw it visible enough (the page itself may be hidden). */
  onScreen: boolean;
  /** When its clock started (on screen, page visible), or undefined while it is stopped. */
  since?: number;
  /** Visible time added up on this page, not counting the current stretch. */
  total: number;
  timers: ReturnType<typeof setTimeout>[];
}

/**
 * A running capture: calling it stops capturing and undoes every hook.
 */
export interface Capture {
  (): void;
  /**
   * The visitor erased `item` (every item when absent): each such item that has been on screen on
   * this page counts as viewed and dwelled on already, so that its exposure before the erasure
   * never records it again on this page.
   */
  forgot(item?: string): void;
}

/** What capture wraps the `forget` of (Capture.forgot before the erasure itself). */
interface Forgetting {
  forget(item?: string): Promise<void>;
}

/**
 * Starts capturing. Each of `owners` has its `forget` wrapped so that an erasure calls
 * Capture.forgot first. By default the owner is the page's `window.hearth`, which the loader
 * (loader.ts) sets before it loads this module; its command form, `hearth('forget', item)`, runs
 * the same method.
 */
export function capture(
  track: (event: TrackEvent) => void,
  owners?: readonly Forgetting[],
  doc: Document = document,
): Capture {
  const win = doc.defaultView ?? window;
  const watches = new Map<Element, Watch>();
  /** Items viewed and dwelled on, on the current page. */
  const viewed = new Set<string>();
  const dwelled = new Set<string>();
  const report = (el: Element, type: TrackEvent['type'], once?: Set<string>): void => {
    const item = el.getAttribute('data-hearth-item');
    if (!item || !el.isConnected || once?.has(item)) return;
    if (type !== 'click' && el.closest(SLOT_SELECTOR)) return;
    once?.add(item);
    track({ type, item });
  };

  const onClick = (event: Event): void => {
    const marked = (event.target as Element | null)?.closest?.(SELECTOR);
    if (marked) report(marked, 'click');
  };

  /** Stops the clock on an element (it left the screen, or the page was hidden). */
  const pause = (w: Watch): void => {
    if (w.since !== undefined) w.total += performance.now() - w.since;
    w.since = undefined;
    w.timers.forEach(clearTimeout);
    w.timers = [];
  };
  /** Starts the clock on a visible element, with a timer for each threshold still ahead. */
  const resume = (el: Element, w: Watch): void => {
    if (w.since !== undefined) return;
    w.since = performance.now();
    w.timers.push(
      setTimeout(() => report(el, 'view', viewed), VIEW_MS),
      setTimeout(() => report(el, 'dwell', dwelled), Math.max(0, DWELL_MS - w.total)),
    );
  };

  /** The clock runs while the element is on screen and the page is visible. */
  const update = (el: Element, w: Watch): void => {
    if (w.onScreen && doc.visibilityState !== 'hidden') resume(el, w);
    else pause(w);
  };

  const io = new IntersectionObserver(
    (entries) => {
      for (const entry of entries) {
        const w = watches.get(entry.target);
        if (!w) continue;
        const viewport = entry.rootBounds?.height ?? win.innerHeight;
        w.onScreen =
          entry.isIntersecting &&
          (entry.intersectionRatio >= 0.5 || entry.intersectionRect.height >= viewport / 2);
        update(entry.target, w);
      }
    },
    // Fine steps at the low end: an element many screens tall only ever shows a small fraction of
    // itself, and a callback comes only when a threshold is crossed.
    { threshold: [0, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1] },
  );
  const watch = (el: Element): void => {
    if (watches.has(el)) return;
    watches.set(el, { onScreen: false, total: 0, timers: [] });
    io.observe(el);
  };
  const unwatch = (el: Element): void => {
    const w = watches.get(el);
    if (!w) return;
    pause(w);
    watches.delete(el);
    io.unobserve(el);
  };
  const scan = (node: Node, add: boolean): void => {
    if (!(node instanceof Element)) return;
    const found = node.matches(SELECTOR) ? [node] : [];
    found.push(...node.querySelectorAll(SELECTOR));
    found.forEach(add ? watch : unwatch);
  };
  const mo = new MutationObserver((records) => {
    for (const record of records) {
      if (record.type === 'attributes') {
        // A re-labelled element is a new item: forget what was seen of the old one.
        unwatch(record.target as Element);
        scan(record.target, true);
        continue;
      }
      record.removedNodes.forEach((node) => scan(node, false));
      record.addedNodes.forEach((node) => scan(node, true));
    }
  });

  /** A new page (SPA navigation): everything on screen can be viewed and dwelled on again. */
  const newPage = (): void => {
    viewed.clear();
    dwelled.clear();
    for (const [el, w] of watches) {
      pause(w);
      w.total = 0;
      update(el, w);
    }
  };
  const onVisibility = (): void => watches.forEach((w, el) => update(el, w));
  const forgot = (item?: string): void => {
    for (const [el, w] of watches) {
      const id = el.getAttribute('data-hearth-item');
      if (!id || (item !== undefined && id !== item)) continue;
      if (w.total > 0 || w.since !== undefined) {
        viewed.add(id);
        dwelled.add(id);
      }
    }
  };

  doc.addEventListener('click', onClick, { capture: true, passive: true });
  doc.addEventListener('visibilitychange', onVisibility);
  mo.observe(doc.documentElement, {
    childList: true,
    subtree: true,
    attributes: true,
    attributeFilter: ['data-hearth-item'],
  });
  scan(doc.documentElement, true);
  const stopNavigation = onNavigation(win, newPage);

  for (const owner of owners ?? pageHearth(doc)) {
    const forget = owner.forget;
    owner.forget = (item) => {
      forgot(item);
      return forget(item);
    };
  }
  const stop = (): void => {
    doc.removeEventListener('click', onClick, { capture: true });
    doc.removeEventListener('visibilitychange', onVisibility);
    mo.disconnect();
    io.disconnect();
    watches.forEach(pause);
    watches.clear();
    stopNavigation();
  };
  return Object.assign(stop, { forgot });
}

/** The loader's `window.hearth` (loader.ts), as the owner of a `forget`; none before it runs. */
function pageHearth(doc: Document): Forgetting[] {
  const hearth = (doc.defaultView as { hearth?: Partial<Forgetting> } | null)?.hearth;
  return typeof hearth?.forget === 'function' ? [hearth as Forgetting] : [];
}

/** Minimal shape of the Navigation API (not in TypeScript's DOM library everywhere yet). */
interface NavigationLike {
  addEventListener(type: 'currententrychange', listener: () => void): void;
  removeEventListener(type: 'currententrychange', listener: () => void): void;
}

/**
 * Calls `onPage` after each same-document navigation that changes the URL's path or query. Uses the
 * Navigation API where the browser has it; otherwise wraps history.pushState / replaceState and
 * listens to popstate. Returns a function that undoes it.
 */
export function onNavigation(win: Window, onPage: () => void): () => void {
  let last = pageKey(win.location.href);
  const check = (): void => {
    const key = pageKey(win.location.href);
    if (key !== last) {
      last = key;
      onPage();
    }
  };
  const navigation = (win as Window & { navigation?: NavigationLike }).navigation;
  if (navigation) {
    navigation.addEventListener('currententrychange', check);
    return () => navigation.removeEventListener('currententrychange', check);
  }
  const { history } = win;
  const { pushState, replaceState } = history;
  const wrappedPush: History['pushState'] = function (this: History, ...args) {
    pushState.apply(this, args);
    check();
  };
  const wrappedReplace: History['replaceState'] = function (this: History, ...args) {
    replaceState.apply(this, args);
    check();
  };
  history.pushState = wrappedPush;
  history.replaceState = wrappedReplace;
  win.addEventListener('popstate', check);
  return () => {
    // Only undo our own wrappers: a script that wrapped them again since keeps its own.
    if (history.pushState === wrappedPush) history.pushState = pushState;
    if (history.replaceState === wrappedReplace) history.replaceState = replaceState;
    win.removeEventListener('popstate', check);
  };
}

/** A page is its path and query: a hash change is a jump within the same page. */
function pageKey(href: string): string {
  return href.split('#')[0]!;
}
