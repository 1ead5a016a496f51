/* global window, document, history, URLSearchParams */
// A single-page app: a header item that stays, a list of tall items, and a "next page" button that
// changes the URL with history.pushState and renders another list, as client-side routers do.
const list = document.getElementById('list');

function render(page) {
  list.replaceChildren(
    ...Array.from({ length: 8 }, (_, i) => {
      const article = document.createElement('article');
      article.dataset.hearthItem = `${page}-${i + 1}`;
      article.textContent = `Item ${page}-${i + 1}`;
      return article;
    }),
  );
}

render(new URLSearchParams(window.location.search).get('page') ?? 'a');
document.getElementById('next').addEventListener('click', () => {
  history.pushState({}, '', '?page=b');
  render('b');
});
window.addEventListener('popstate', () =>
  render(new URLSearchParams(window.location.search).get('page') ?? 'a'),
);
