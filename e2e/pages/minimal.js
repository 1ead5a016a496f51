/* global window, document */
// A minimal host site's own code: it renders Hearth's recommendations as buttons (clicks on them
// are captured by the SDK) and has a button that asks Hearth to learn and share. Nothing else, so
// any main-thread work measured on this page is Hearth's.
import { renderRecs } from './render-recs.js';

const list = document.getElementById('recs');
const render = () => renderRecs(list, window.hearth, 6);

window.addEventListener('hearth-ready', render);
window.addEventListener('hearth-track', render);
document.getElementById('sync').addEventListener('click', async () => {
  const result = await window.hearth.sync();
  document.getElementById('sync-result').textContent = result.status;
});
