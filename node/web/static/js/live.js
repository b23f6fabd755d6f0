// Live proposal pages: the node's server-sent events say that something about this proposal
// was stored; the page then reads itself again from the node and swaps the parts that change
// (result, positions, seals, discussion). The browser resumes with Last-Event-ID by itself.
import { localize } from './time.js';
import { t } from './messages.js';

let refreshing = null;
let again = false;

async function refresh(article) {
  const res = await fetch(location.pathname, { headers: { Accept: 'text/html' } });
  if (!res.ok) return;
  const fresh = new DOMParser().parseFromString(await res.text(), 'text/html');
  for (const now of document.querySelectorAll('[data-live]')) {
    const next = fresh.querySelector(`[data-live="${now.dataset.live}"]`);
    if (next) now.replaceChildren(...Array.from(next.childNodes).map((n) => document.adoptNode(n)));
  }
  localize(document);
  article.dispatchEvent(new CustomEvent('refreshed', { bubbles: true }));
}

export function follow(article) {
  if (!window.EventSource) return;
  const pid = article.dataset.proposal;
  const source = new EventSource('/api/v1/stream?proposal=' + pid);
  const run = () => {
    refreshing = new Promise((resolve) => setTimeout(resolve, 150))
      .then(() => refresh(article))
      .finally(() => {
        refreshing = null;
        if (again) { again = false; run(); } // something arrived while we read: read again
      });
  };
  source.onmessage = () => {
    if (refreshing) again = true;
    else run();
  };
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) {
      const region = article.querySelector('[data-role="result"]');
      if (region) region.after(Object.assign(document.createElement('p'),
        { className: 'meta', textContent: t('live_off') }));
    }
  };
}
