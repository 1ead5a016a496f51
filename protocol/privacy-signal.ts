/**
 * The browser's privacy signals, read the same way wherever Hearth runs: the page checks its
 * navigator before anything may leave the device (uploads off, and learning too with
 * `data-privacy-signal="learning"`), and the worker reports what its own navigator shows
 * (worker/capabilities.ts). Workers see Global Privacy Control but not Do Not Track, which is why the
 * page's reading is the one that decides.
 */

/** The navigator fields the signals show up in (`Navigator` and `WorkerNavigator` both fit). */
export interface PrivacySignalSource {
  readonly globalPrivacyControl?: unknown;
  readonly doNotTrack?: unknown;
}

/**
 * True when the browser sends Global Privacy Control or Do Not Track. IE's `msDoNotTrack` is not
 * read: browsers that had it cannot start a module worker, so Hearth never runs there.
 */
export function privacySignal(nav: PrivacySignalSource): boolean {
  return nav.globalPrivacyControl === true || nav.doNotTrack === '1';
}
