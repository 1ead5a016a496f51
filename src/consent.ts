/**
 * Consent, checked before anything leaves the device. Global Privacy Control or Do Not Track turn
 * uploads off; local recommendations keep working (they never leave the browser).
 */

/** True when the browser signals GPC or DNT. */
export function privacySignal(nav: Navigator = navigator): boolean {
  const n = nav as Navigator & { globalPrivacyControl?: boolean; msDoNotTrack?: string };
  return n.globalPrivacyControl === true || n.doNotTrack === '1' || n.msDoNotTrack === '1';
}
