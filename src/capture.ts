/**
 * Automatic interaction capture: a click on any element marked `data-hearth-item="ID"` is tracked.
 * One delegated, passive listener in the capture phase, so the site's own handlers (and
 * stopPropagation) are untouched.
 */
import type { TrackEvent } from '../protocol/api.js';

/** Starts capturing; returns a function that stops it. */
export function captureClicks(track: (event: TrackEvent) => void): () => void {
  const onClick = (event: Event): void => {
    const target = event.target as Element | null;
    const marked = target?.closest?.('[data-hearth-item]');
    const item = marked?.getAttribute('data-hearth-item');
    if (item) track({ type: 'click', item });
  };
  document.addEventListener('click', onClick, { capture: true, passive: true });
  return () => document.removeEventListener('click', onClick, { capture: true });
}
