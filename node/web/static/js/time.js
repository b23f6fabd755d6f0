// Times travel in UTC; each <time> is shown in the viewer's own zone and language, with the
// zone named and the exact UTC time kept in `title`.

export function localize(root = document) {
  const lang = document.body.dataset.lang || 'en';
  const absolute = new Intl.DateTimeFormat(lang, {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
    timeZoneName: 'short',
  });
  for (const el of root.querySelectorAll('time[datetime]')) {
    const when = new Date(el.getAttribute('datetime'));
    if (Number.isNaN(when.getTime())) continue;
    el.textContent = absolute.format(when);
  }
}
