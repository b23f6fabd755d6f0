// Acts, signed in this browser and sent to this node: check, then sign once, then send.
// A retry after a network failure sends the same signed bytes again (the node answers 200 for
// an act it already holds), so one click never makes two acts.
import { t, refusal } from './messages.js';
import { postEvent, getJSON } from './api.js';
import { signEvent, timestamp } from './event.js';
import { signer } from './keystore.js';

let me = null;
let secure = true;

function context() {
  const d = document.body.dataset;
  return { federation: d.federation, chapter: d.chapter };
}

function askPassphrase() {
  // Only where the browser has no WebCrypto Ed25519: the sealed key is opened for this page.
  return Promise.resolve(window.prompt(t('passphrase_required')) || '');
}

// --- errors, GOV.UK style: a summary on top, focused, and a message by each field --------

function clearErrors(scope) {
  const summary = scope.querySelector('[data-role="errors"]')
    || document.querySelector('[data-role="errors"]');
  if (summary) { summary.hidden = true; summary.querySelector('ul').replaceChildren(); }
  for (const el of scope.querySelectorAll('.field-error')) { el.hidden = true; el.textContent = ''; }
  for (const el of scope.querySelectorAll('.has-error')) el.classList.remove('has-error');
  document.title = document.title.replace(new RegExp('^' + t('error_prefix') + ' '), '');
}

export function showErrors(scope, errors) {
  clearErrors(scope);
  const summary = scope.querySelector('[data-role="errors"]')
    || document.querySelector('[data-role="errors"]');
  for (const { field, message } of errors) {
    const input = field ? document.getElementById(field) : null;
    const slot = field ? document.getElementById(field + '-error') : null;
    if (slot) {
      slot.textContent = t('error_prefix') + ' ' + message;
      slot.hidden = false;
      slot.closest('.field')?.classList.add('has-error');
    }
    if (summary) {
      const li = document.createElement('li');
      const a = document.createElement('a');
      a.href = input ? '#' + field : '#';
      a.textContent = message;
      a.addEventListener('click', (e) => { e.preventDefault(); (input || summary).focus(); });
      li.append(a);
      summary.querySelector('ul').append(li);
    }
  }
  if (summary && errors.length) {
    summary.hidden = false;
    document.title = t('error_prefix') + ' ' + document.title;
    summary.focus();
  } else if (errors.length) {
    status(scope, errors.map((e) => e.message).join(' '), true);
  }
}

function status(scope, text, problem = false, link = null) {
  const region = scope.querySelector('[data-role="status"]')
    || document.querySelector('[data-role="status"]');
  if (!region) return;
  region.classList.toggle('problem', problem);
  region.replaceChildren(document.createTextNode(text));
  if (link) {
    const a = document.createElement('a');
    a.href = link.href;
    a.textContent = link.text;
    region.append(' ', a);
  }
}

// --- signing and sending ---------------------------------------------------------------

const signed = new WeakMap(); // form/button -> {key, bytes, id}: resent as is on a retry

async function send(scope, type, body, { field = null, trigger = null } = {}) {
  if (!me.record) return null;
  if (!me.record.backedUp) {
    showErrors(scope, [{ field: null, message: t('backup_first') }]);
    return null;
  }
  if (!secure) {
    showErrors(scope, [{ field: null, message: t('secure_context') }]);
    return null;
  }
  const key = JSON.stringify([type, body]);
  let held = trigger ? signed.get(trigger) : null;
  if (!held || held.key !== key) {
    const unsigned = { ...context(), type, author: me.record.public, created_at: timestamp(), body };
    const made = await signEvent(unsigned, signer(me.record, askPassphrase));
    held = { key, bytes: made.bytes, id: made.id, event: made.event };
    if (trigger) signed.set(trigger, held);
  }
  if (trigger) trigger.disabled = true;
  status(scope, t('signing'));
  try {
    const answer = await postEvent(held.bytes);
    if (trigger) signed.delete(trigger);
    clearErrors(scope);
    status(scope, answer.duplicate ? t('already_held') : t('sent'), false,
      { href: '/events/' + answer.id, text: t('receipt') });
    addReceipt(type, answer.id);
    return answer;
  } catch (e) {
    if (e.code !== 'network' && trigger) signed.delete(trigger); // refused: sign anew next time
    status(scope, '', false);
    showErrors(scope, [{ field, message: refusal(e.code, e.message) }]);
    return null;
  } finally {
    if (trigger) trigger.disabled = false;
  }
}

function addReceipt(type, id) {
  const box = document.querySelector('[data-role="receipts"]');
  if (!box) return;
  const li = document.createElement('li');
  const a = document.createElement('a');
  a.href = '/events/' + id;
  a.textContent = type + ' · ' + id.slice(0, 12);
  li.append(a);
  box.querySelector('ul').append(li);
  box.hidden = false;
}

function preview(form, type, body) {
  const pre = form.querySelector('[data-role="preview"]');
  if (pre) {
    pre.textContent = JSON.stringify({ ...context(), type, author: me.record.public, body }, null, 2);
  }
}

// --- the proposal page -------------------------------------------------------------------

function proposalPage(article) {
  const pid = article.dataset.proposal;
  const mine = (me.person && me.person.proposals && me.person.proposals[pid]) || {};
  const withdraw = article.querySelector('[data-role="withdraw"]');
  if (withdraw) withdraw.hidden = !(mine.veto && (!mine.veto_withdraw
    || mine.veto_withdraw.created_at < mine.veto.created_at));
  for (const act of Object.values(mine)) addReceipt(act.type, act.id);

  for (const button of article.querySelectorAll('button[data-act]')) {
    button.addEventListener('click', async () => {
      const type = button.dataset.act;
      const body = { proposal: pid };
      if (type === 'vote') body.choice = button.dataset.choice;
      const done = await send(article.querySelector('.act'), type, body, { trigger: button });
      if (done && withdraw && type === 'veto_withdraw') withdraw.hidden = true;
    });
  }

  const veto = article.querySelector('form[data-act="veto"]');
  if (veto) {
    const reason = veto.querySelector('textarea');
    const confirm = veto.querySelector('[data-role="confirm"]');
    const check = veto.querySelector('[data-role="check"]');
    check.addEventListener('click', () => {
      if (!reason.value.trim()) {
        showErrors(article.querySelector('.act'), [{ field: 'veto-reason', message: t('reason_required') }]);
        return;
      }
      clearErrors(article.querySelector('.act'));
      preview(veto, 'veto', { proposal: pid, reason: reason.value });
      confirm.hidden = false;
      check.hidden = true;
      confirm.querySelector('[data-role="send"]').focus();
    });
    veto.querySelector('[data-role="cancel"]').addEventListener('click', () => {
      confirm.hidden = true;
      check.hidden = false;
      reason.focus();
    });
    veto.addEventListener('submit', async (e) => {
      e.preventDefault();
      const done = await send(article.querySelector('.act'), 'veto',
        { proposal: pid, reason: reason.value }, { field: 'veto-reason', trigger: veto.querySelector('[data-role="send"]') });
      if (done) {
        reason.value = '';
        confirm.hidden = true;
        check.hidden = false;
        if (withdraw) withdraw.hidden = false;
      }
    });
  }

  const delegate = article.querySelector('form[data-act="delegation"]');
  if (delegate) {
    delegate.addEventListener('submit', async (e) => {
      e.preventDefault();
      const to = delegate.querySelector('select').value;
      if (!to) {
        showErrors(article.querySelector('.act'), [{ field: 'delegate-to', message: t('delegate_required') }]);
        return;
      }
      await send(article.querySelector('.act'), 'delegation', { to, proposal: pid },
        { field: 'delegate-to', trigger: delegate.querySelector('button[type="submit"]') });
    });
  }

  const comment = article.querySelector('form[data-act="comment"]');
  const replyTo = comment.querySelector('input[name="reply_to"]');
  const replying = comment.querySelector('[data-role="replying"]');
  const showReplies = () => {
    for (const b of article.querySelectorAll('button.reply')) b.hidden = false;
  };
  showReplies();
  article.addEventListener('refreshed', showReplies);
  article.addEventListener('click', (e) => {
    const b = e.target.closest('button.reply');
    if (!b) return;
    replyTo.value = b.dataset.replyTo;
    replying.hidden = false;
    comment.querySelector('textarea').focus();
  });
  replying.querySelector('[data-role="cancel-reply"]').addEventListener('click', () => {
    replyTo.value = '';
    replying.hidden = true;
  });
  comment.addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = comment.querySelector('textarea');
    if (!text.value.trim()) {
      showErrors(comment, [{ field: 'comment-text', message: t('comment_required') }]);
      return;
    }
    const body = { proposal: pid, text: text.value };
    if (replyTo.value) body.reply_to = replyTo.value;
    const done = await send(comment, 'comment', body,
      { field: 'comment-text', trigger: comment.querySelector('button[type="submit"]') });
    if (done) {
      text.value = '';
      replyTo.value = '';
      replying.hidden = true;
    }
  });
}

// --- the new proposal page ---------------------------------------------------------------

function localInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

function newProposalPage(form) {
  const minHours = Number(document.body.dataset.minOpenHours);
  const closes = form.querySelector('#closes');
  const closesField = form.querySelector('[data-role="closes"]');
  const effect = form.querySelector('[data-role="effect"]');
  // a default that the charter allows, with a minute to read and sign
  closes.value = localInput(Math.ceil((Date.now() + minHours * 3600000 + 120000) / 60000) * 60000);
  const kindNow = () => form.querySelector('input[name="kind"]:checked').value;
  const onKind = () => {
    closesField.hidden = kindNow() === 'action';
    if (effect) effect.hidden = kindNow() === 'action';
  };
  for (const r of form.querySelectorAll('input[name="kind"]')) r.addEventListener('change', onKind);
  onKind();

  const build = () => {
    const errors = [];
    const kind = kindNow();
    const title = form.querySelector('#title').value.trim();
    const text = form.querySelector('#text').value;
    if (!title) errors.push({ field: 'title', message: t('title_required') });
    if (!text.trim()) errors.push({ field: 'text', message: t('text_required') });
    const body = { title, text, kind };
    if (kind !== 'action') {
      const at = closes.value ? new Date(closes.value).getTime() : NaN;
      if (Number.isNaN(at)) errors.push({ field: 'closes', message: t('closes_required') });
      else if (at < Date.now() + minHours * 3600000) {
        errors.push({ field: 'closes', message: t('closes_too_soon', { hours: minHours }) });
      } else body.closes_at = timestamp(at);
      const chosen = form.querySelector('#effect') && form.querySelector('#effect').value;
      const v = (name) => form.querySelector('[name="' + name + '"]').value.trim();
      if (chosen === 'appoint_connector') {
        body.effect = { appoint_connector: { key: v('effect_key'), name: v('effect_name'), chapter: v('effect_chapter') } };
      } else if (chosen === 'remove_connector') {
        body.effect = { remove_connector: { key: v('effect_key') } };
      } else if (chosen === 'admit_chapter') {
        body.effect = { admit_chapter: { slug: v('effect_chapter'), key: v('effect_key'), url: v('effect_url') } };
      }
      const from = form.querySelector('input[name="escalated_from"]');
      if (from && kind === 'vote') body.escalated_from = from.value;
    }
    return { errors, body };
  };
  const confirm = form.querySelector('[data-role="confirm"]');
  const check = form.querySelector('[data-role="check"]');
  check.addEventListener('click', () => {
    const { errors, body } = build();
    if (errors.length) { showErrors(form, errors); return; }
    clearErrors(form);
    preview(form, 'proposal', body);
    confirm.hidden = false;
    check.hidden = true;
    confirm.querySelector('[data-role="send"]').focus();
  });
  form.querySelector('[data-role="cancel"]').addEventListener('click', () => {
    confirm.hidden = true;
    check.hidden = false;
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const { errors, body } = build();
    if (errors.length) { showErrors(form, errors); return; }
    const done = await send(form, 'proposal', body, { trigger: confirm.querySelector('[data-role="send"]') });
    if (done) location.assign('/proposals/' + done.id);
  });
}

// --- the delegations page ----------------------------------------------------------------

async function delegationsPage(box) {
  const words = document.getElementById('delegation-words').dataset;
  const names = new Map(Array.from(box.querySelectorAll('#global-to option'), (o) => [o.value, o.textContent]));
  const label = (key) => names.get(key) || key.slice(0, 8);
  const render = async () => {
    const person = await getJSON('/api/v1/people/' + me.record.public);
    const current = box.querySelector('[data-role="current"]');
    current.textContent = person.delegation && person.delegation.body.to
      ? current.dataset.to + ' ' + label(person.delegation.body.to) : current.dataset.none;
    for (const row of box.querySelectorAll('tr[data-proposal]')) {
      const d = person.delegations[row.dataset.proposal];
      const everyVote = person.delegation && person.delegation.body.to;
      row.querySelector('[data-role="delegation"]').textContent = d
        ? (d.body.to ? label(d.body.to) : words.revoked)
        : (everyVote ? words.global + ': ' + label(everyVote) : words.none);
      try {
        const report = await getJSON('/api/v1/proposals/' + row.dataset.proposal);
        const mine = (report.trace || []).find((x) => x.connector === me.record.public);
        row.querySelector('[data-role="ends"]').textContent = !mine ? '–'
          : mine.reason === 'direct' ? words.direct
          : mine.counted_as === 'not_cast' ? words.notCast
          : label(mine.stopped_at) + ' (' + mine.counted_as + ')';
      } catch { /* left as – */ }
    }
  };
  box.hidden = false;
  if (me.person.role !== 'connector') {
    showErrors(box, [{ field: null, message: words.notConnector }]);
    for (const f of box.querySelectorAll('form')) f.hidden = true;
    return;
  }
  await render();
  const form = box.querySelector('form[data-scope="global"]');
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const to = form.querySelector('select').value;
    if (!to) { showErrors(box, [{ field: 'global-to', message: t('delegate_required') }]); return; }
    if (await send(box, 'delegation', { to, proposal: null }, { field: 'global-to', trigger: form.querySelector('button[type="submit"]') })) await render();
  });
  form.querySelector('[data-role="revoke"]').addEventListener('click', async (e) => {
    if (await send(box, 'delegation', { to: null, proposal: null }, { trigger: e.currentTarget })) await render();
  });
}

// --- email settings: a signed statement, kept on this node only ---------------------------

function mailSettingsPage(form) {
  form.hidden = false;
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const contact = form.querySelector('#mail-address').value.trim();
    if (contact && !/^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$/.test(contact)) {
      showErrors(form, [{ field: 'mail-address', message: t('bad_contact') }]);
      return;
    }
    const body = { contact, mode: form.querySelector('input[name="mode"]:checked').value,
                   lang: form.querySelector('#mail-lang').value };
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      const made = await signEvent({ ...context(), type: 'mail_settings', author: me.record.public,
                                     created_at: timestamp(), body }, signer(me.record, askPassphrase));
      const res = await fetch('/api/v1/mail', { method: 'POST', body: made.bytes,
                                                headers: { 'Content-Type': 'application/json' } });
      const answer = await res.json().catch(() => ({}));
      if (!res.ok) {
        const err = answer.error || {};
        showErrors(form, [{ field: err.code === 'bad_contact' ? 'mail-address' : null,
                            message: refusal(err.code, err.message) }]);
        return;
      }
      clearErrors(form);
      status(form, t('mail_saved'));
    } finally {
      button.disabled = false;
    }
  });
}

export function attachActs(person, secureContext) {
  me = person;
  secure = secureContext;
  const hasKey = Boolean(me.record);
  for (const el of document.querySelectorAll('[data-role="needs-key"]')) el.hidden = hasKey;
  if (!hasKey) {
    for (const f of document.querySelectorAll('form[data-act]')) f.hidden = true;
    return;
  }
  const connector = me.person && me.person.role === 'connector';
  for (const el of document.querySelectorAll('.connector-only')) {
    if (!connector) el.remove(); // not hidden: a member has no Veto or Vote control at all
  }
  for (const el of document.querySelectorAll('[data-role="actions"]')) el.hidden = false;
  const note = document.querySelector('[data-role="member-note"]');
  if (note) note.hidden = connector;
  const article = document.querySelector('[data-module="proposal"]');
  if (article) proposalPage(article);
  const form = document.querySelector('[data-module="new-proposal"]');
  if (form) newProposalPage(form);
  const box = document.querySelector('[data-module="delegations"]');
  if (box) delegationsPage(box);
  const mail = document.querySelector('[data-module="mail-settings"]');
  if (mail) mailSettingsPage(mail);
}
