// Entry module: attaches each behaviour to the elements that ask for it (`data-module`).
// Pages read without it; it adds the person's key, signing and live updates.
import { localize } from './time.js';
import { t } from './messages.js';
import { getJSON, clockOffset } from './api.js';
import { loadKey } from './keystore.js';

export const me = { record: null, person: null };

async function identify() {
  me.record = await loadKey().catch(() => null);
  if (!me.record) return;
  try {
    me.person = await getJSON('/api/v1/people/' + me.record.public);
  } catch {
    me.person = { role: 'unknown', short: me.record.public.slice(0, 8) };
  }
  const role = me.person.role;
  document.body.classList.add('has-key', 'role-' + role);
  const box = document.querySelector('[data-module="identity"]');
  if (box) {
    const words = role === 'connector' ? 'you_are_connector'
      : role === 'member' ? 'you_are_member' : 'you_are_unknown';
    box.querySelector('[data-role="who"]').textContent = t(words, me.person);
    box.hidden = false;
  }
}

async function contextCheck() {
  const box = document.querySelector('[data-module="context-check"]');
  if (!box) return true;
  const say = (text) => {
    box.querySelector('[data-role="message"]').textContent = text;
    box.hidden = false;
  };
  if (!window.isSecureContext || !crypto.subtle) {
    say(t('secure_context'));
    return false;
  }
  try {
    const { offset, info } = await clockOffset();
    const grace = info.rules.grace_seconds;
    if (Math.abs(offset) > grace * 1000 * 0.8) {
      say(t('clock_off', { seconds: Math.round(offset / 1000), grace }));
      return false;
    }
  } catch { /* the node will say so when an act is sent */ }
  return true;
}

function showMyActs() {
  const words = document.getElementById('mine-words');
  if (!words || !me.person || !me.person.proposals) return;
  for (const card of document.querySelectorAll('[data-proposal]')) {
    const mine = me.person.proposals[card.dataset.proposal];
    const line = card.querySelector('[data-role="mine"]');
    if (!line) continue;
    const done = mine ? Object.keys(mine).map((type) => words.dataset[type]).filter(Boolean) : [];
    if (!done.length && card.dataset.state !== 'open' && card.dataset.state !== 'pending') continue;
    line.textContent = done.length ? done.join(' · ') : words.dataset.none;
    line.hidden = false;
  }
}

async function main() {
  localize();
  const live = document.querySelector('[data-module="proposal"]');
  if (live) import('./live.js').then(({ follow }) => follow(live));
  const [secure] = await Promise.all([contextCheck(), identify()]);
  showMyActs();
  const modules = new Set(Array.from(document.querySelectorAll('[data-module]'),
    (el) => el.dataset.module));
  if (modules.has('proposal') || modules.has('new-proposal') || modules.has('delegations')
      || modules.has('mail-settings')) {
    const { attachActs } = await import('./act.js');
    attachActs(me, secure);
  }
  if (modules.has('check') || modules.has('check-file')) {
    const { attachCheck } = await import('./check/page.js');
    attachCheck();
  }
  if (modules.has('key-page')) {
    const { attachKeyPage } = await import('./keypage.js');
    attachKeyPage(me, secure);
  }
}

// `data-ready` once every behaviour is attached: tests and screenshots wait for it.
main().finally(() => {
  document.documentElement.dataset.ready = '1';
  performance.mark('chapter-node-ready'); // bench/web.py reads it: "interactive"
});
