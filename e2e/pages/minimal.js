/* global window, document */
// A minimal host site's own code: it renders Hearth's recommendations as buttons (clicks on them
// are captured by the SDK) and has a button that asks Hearth to learn and share. Nothing else, so
// any main-thread work measured on this page is Hearth's.
import { renderRecs } from './render-recs.js';

const list = document.getElementById('recs');
const render = () => renderRecs(list, window.hearth, 6);

window.addEventListener('hearth-ready', render);
// Redrawn after what the visitor did, not after what the page merely showed (README).
window.addEventListener('hearth-track', (event) => {
  if (['click', 'cart', 'purchase'].includes(event.detail?.type)) void render();
});
document.getElementById('sync').addEventListener('click', async () => {
  const result = await window.hearth.sync();
  document.getElementById('sync-result').textContent = result.status;
});
