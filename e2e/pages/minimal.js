/* global window, document */
// A minimal host site's own code: it renders Hearth's recommendations as buttons (clicks on them
// are captured by the SDK) and has a button that asks Hearth to learn and share. Nothing else, so
// any main-thread work measured on this page is Hearth's.
const list = document.getElementById('recs');

async function render() {
  const recs = await window.hearth.recommend({ k: 6 });
  list.replaceChildren(
    ...recs.map((rec) => {
      const button = document.createElement('button');
      button.type = 'button';
      button.dataset.hearthItem = rec.item;
      button.textContent = `item ${rec.item}`;
      const li = document.createElement('li');
      li.append(button);
      return li;
    }),
  );
  list.dataset.items = recs.map((rec) => rec.item).join(',');
}

window.addEventListener('hearth-ready', render);
window.addEventListener('hearth-track', render);
document.getElementById('sync').addEventListener('click', async () => {
  const result = await window.hearth.sync();
  document.getElementById('sync-result').textContent = result.status;
});
