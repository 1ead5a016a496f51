/* global document */
// How the test sites render recommendations themselves: one button per item, marked with
// data-hearth-item so the SDK captures clicks on it, and the ids on the list for the tests to read.
export async function renderRecs(list, hearth, k) {
  const recs = await hearth.recommend({ k });
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
