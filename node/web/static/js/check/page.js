// "Check it yourself": the proposal page's check against this node's evidence, and the check
// page's check of an export file with no node at all. The words come from the page
// (messages.js); the reading, the rules and the conclusion from evidence.js, rules.js and
// verdict.js.
import { t } from '../messages.js';
import { getJSON } from '../api.js';
import { readEvidence } from './evidence.js';
import { judge, proposals } from './rules.js';
import { verdict, sealsAgree } from './verdict.js';

function short(hash) {
  return hash ? hash.slice(0, 12) : '';
}

function outcomeWords(tally) {
  return t('check.outcome.' + tally.outcome);
}

function tallyWords(tally) {
  if (tally.kind === 'vote') {
    const counts = ['yes', 'no', 'abstain'].map((c) => `${t('check.choice.' + c)} ${tally[c]}`);
    return `${outcomeWords(tally)} (${counts.join(' · ')})`;
  }
  return outcomeWords(tally);
}

/** One finding in words (verdict.js codes). `names`: key -> display name. */
function findingWords(f, names) {
  switch (f.code) {
    case 'bad_signature': return t('check.bad_signature', f);
    case 'bad_line': return t('check.bad_line', { line: f.line, code: f.problem });
    case 'list_mismatch': return t('check.list_mismatch', f);
    case 'missing_acts': return t('check.missing_acts', { ...f, id: short(f.id) });
    case 'hash_differs':
      return t('check.hash_differs', { claimed: tallyWords(f.claimed),
        recomputed: tallyWords(f.recomputed) });
    case 'weight_differs':
      return t('check.weight_differs', { name: names.get(f.connector) || f.connector.slice(0, 8),
        claimed: t('check.choice.' + (f.claimed === 'not_cast' ? 'none' : f.claimed)),
        recomputed: t('check.choice.' + (f.recomputed === 'not_cast' ? 'none' : f.recomputed)) });
    case 'not_admitted': return t('check.not_admitted', { code: f.refusal });
    default: return f.code;
  }
}

function say(box, className, [first, ...rest]) {
  box.className = 'check-result ' + className;
  const lead = document.createElement('p');
  lead.textContent = first;
  const parts = [lead];
  if (rest.length) {
    const list = document.createElement('ul');
    for (const text of rest) {
      const item = document.createElement('li');
      item.textContent = text;
      list.append(item);
    }
    parts.push(list);
  }
  box.replaceChildren(...parts);
}

function connectorNames(charterDoc) {
  return new Map((charterDoc.connectors || []).map((c) => [c.key, c.name]));
}

async function checkProposal(section) {
  const box = section.querySelector('[data-role="check-result"]');
  const button = section.querySelector('[data-role="run-check"]');
  const pid = section.dataset.proposal;
  button.disabled = true;
  try {
    say(box, 'working', [t('check.fetching')]);
    const [claim, text] = await Promise.all([
      getJSON('/api/v1/proposals/' + pid),
      fetch('/api/v1/proposals/' + pid + '/evidence').then((r) => {
        if (!r.ok) throw new Error(r.statusText);
        return r.text();
      }),
    ]);
    const read = await readEvidence(text, (done, total) => {
      say(box, 'working', [t('check.verifying', { done, total })]);
    });
    const judged = judge(read.doc, pid, Date.now());
    let result = verdict(claim, judged, read);
    if (!result.trusted && result.findings.every((f) => f.code === 'hash_differs'
        || f.code === 'weight_differs')) {
      // an act may have arrived between the two requests: ask once more before concluding
      result = verdict(await getJSON('/api/v1/proposals/' + pid), judged, read);
    }
    const names = connectorNames(read.doc.charter);
    if (result.trusted) {
      const sealCount = (judged.seals || []).filter((s) => s.status === 'counted').length;
      const words = judged.final || judged.kind === 'action'
        ? t('check.matches', { outcome: tallyWords(judged.tally), acts: read.doc.events.length,
          seals: sealCount, hash: short(judged.tally_hash) })
        : t('check.matches_open', { outcome: tallyWords(judged.tally),
          acts: read.doc.events.length });
      say(box, 'trusted', [words]);
    } else {
      say(box, 'untrusted', [t('check.untrusted'),
        ...result.findings.slice(0, 8).map((f) => findingWords(f, names))]);
    }
    section.dataset.checked = result.trusted ? 'trusted' : 'untrusted';
  } catch (e) {
    say(box, 'untrusted', [t('check.failed', { message: e.message || String(e) })]);
    section.dataset.checked = 'failed';
  } finally {
    button.disabled = false;
    box.focus();
  }
}

function row(cells) {
  const tr = document.createElement('tr');
  for (const cell of cells) {
    const td = document.createElement('td');
    if (cell instanceof Node) td.append(cell); else td.textContent = cell;
    tr.append(td);
  }
  return tr;
}

async function checkFile(page, file) {
  const box = page.querySelector('[data-role="check-result"]');
  const table = page.querySelector('[data-role="file-proposals"]');
  const body = table.querySelector('tbody');
  body.replaceChildren();
  table.hidden = true;
  try {
    const read = await readEvidence(await file.text(), (done, total) => {
      say(box, 'working', [t('check.verifying', { done, total })]);
    });
    if (!read.doc.charter) throw new Error(t('check.no_file'));
    const now = Date.now();
    const listed = proposals(read.doc, now);
    const names = connectorNames(read.doc.charter);
    for (const p of listed) {
      const judged = judge(read.doc, p.id, now);
      const found = verdict(null, judged, read).findings.filter((f) => f.code !== 'bad_line'
        && f.code !== 'bad_signature');
      const { agree, total } = sealsAgree(judged);
      const code = document.createElement('code');
      code.textContent = short(judged.tally_hash);
      body.append(row([p.title, tallyWords(judged.tally), t('check.state.' + judged.state),
        total ? t('check.seals_agree', { agree, total }) : '—', code,
        found.map((f) => findingWords(f, names)).join(' ')]));
    }
    table.hidden = listed.length === 0;
    const lines = [t('check.file_read', { events: read.doc.events.length,
      proposals: listed.length })];
    if (read.problems.length) {
      lines.push(t('check.file_problems', { count: read.problems.length }),
        ...read.problems.slice(0, 8).map((p) => findingWords(p.code === 'bad_signature'
          ? { code: 'bad_signature', line: p.line, type: p.detail }
          : { code: 'bad_line', line: p.line, problem: p.code }, names)));
    }
    say(box, read.problems.length ? 'untrusted' : 'trusted', lines);
    page.dataset.checked = read.problems.length ? 'untrusted' : 'trusted';
  } catch (e) {
    say(box, 'untrusted', [t('check.failed', { message: e.message || String(e) })]);
    page.dataset.checked = 'failed';
  }
}

export function attachCheck() {
  const section = document.querySelector('[data-module="check"]');
  if (section) {
    const button = section.querySelector('[data-role="run-check"]');
    button.hidden = false;
    button.addEventListener('click', () => checkProposal(section));
  }
  const page = document.querySelector('[data-module="check-file"]');
  if (page) {
    const input = page.querySelector('input[type="file"]');
    const zone = page.querySelector('[data-role="drop"]');
    input.addEventListener('change', () => { if (input.files[0]) checkFile(page, input.files[0]); });
    zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
    zone.addEventListener('dragleave', () => zone.classList.remove('over'));
    zone.addEventListener('drop', (e) => {
      e.preventDefault();
      zone.classList.remove('over');
      const file = e.dataTransfer.files[0];
      if (file) checkFile(page, file);
    });
  }
}
