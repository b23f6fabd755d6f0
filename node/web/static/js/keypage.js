// The key page: create a key (a backup must be downloaded before the first act), import one
// made by `chapter-node keygen` (plain or sealed), download the backup, forget it.
import { t } from './messages.js';
import { getJSON } from './api.js';
import { forgetKey, loadKey, markBackedUp, saveKey } from './keystore.js';
import { KeyFileError, isSealed, newSeed, openKeyFile, parseKeyFile, sealKeyFile } from './keyfile.js';
import { showErrors } from './act.js';

const MIN_PASSPHRASE = 10;

function say(page, text, problem = false) {
  const region = page.querySelector('[data-role="status"]');
  region.classList.toggle('problem', problem);
  region.textContent = text;
}

function download(record) {
  const blob = new Blob([JSON.stringify(record.keyfile, null, 2) + '\n'], { type: 'application/json' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = 'chapter-node-' + record.public.slice(0, 8) + '.key';
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

async function show(page, me) {
  const record = await loadKey();
  me.record = record;
  page.querySelector('[data-role="have-key"]').hidden = !record;
  page.querySelector('[data-role="no-key"]').hidden = Boolean(record);
  if (!record) return;
  page.querySelector('[data-role="public"]').textContent = record.public;
  page.querySelector('[data-role="backup-needed"]').hidden = record.backedUp;
  const who = page.querySelector('[data-role="identity"]');
  try {
    const person = await getJSON('/api/v1/people/' + record.public);
    who.textContent = t(person.role === 'connector' ? 'you_are_connector'
      : person.role === 'member' ? 'you_are_member' : 'you_are_unknown', person);
  } catch {
    who.textContent = '';
  }
}

export function attachKeyPage(me, secure) {
  const page = document.querySelector('[data-module="key-page"]');
  if (!secure) {
    say(page, t('secure_context'), true);
    return;
  }
  show(page, me);

  page.querySelector('[data-role="copy"]').addEventListener('click', async () => {
    await navigator.clipboard.writeText(me.record.public).catch(() => {});
    say(page, t('copied'));
  });
  page.querySelector('[data-role="export"]').addEventListener('click', async () => {
    download(me.record);
    await markBackedUp();
    await show(page, me);
  });
  page.querySelector('[data-role="forget"]').addEventListener('click', async () => {
    if (!window.confirm(t('confirm_forget'))) return;
    await forgetKey();
    say(page, t('key_forgotten'));
    await show(page, me);
  });

  const create = page.querySelector('form[data-role="create"]');
  create.addEventListener('submit', async (e) => {
    e.preventDefault();
    const pass = create.querySelector('#create-passphrase').value;
    const again = create.querySelector('#create-again').value;
    const errors = [];
    if (pass.length < MIN_PASSPHRASE) errors.push({ field: 'create-passphrase', message: t('passphrase_short') });
    else if (pass !== again) errors.push({ field: 'create-again', message: t('passphrase_mismatch') });
    if (errors.length) { showErrors(page, errors); return; }
    showErrors(page, []);
    const button = create.querySelector('button');
    button.disabled = true;
    say(page, t('unlocking'));
    try {
      const seed = newSeed();
      const keyfile = await sealKeyFile(seed, pass);
      await saveKey(seed, keyfile, false);
      create.reset();
      say(page, t('key_ready') + ' ' + t('backup_first'));
      await show(page, me);
    } finally {
      button.disabled = false;
    }
  });

  const imp = page.querySelector('form[data-role="import"]');
  imp.addEventListener('submit', async (e) => {
    e.preventDefault();
    const file = imp.querySelector('#import-file').files[0];
    const pass = imp.querySelector('#import-passphrase').value;
    if (!file) { showErrors(page, [{ field: 'import-file', message: t('key_file_required') }]); return; }
    let doc;
    try {
      doc = parseKeyFile(await file.text());
    } catch {
      showErrors(page, [{ field: 'import-file', message: t('bad_key_file') }]);
      return;
    }
    if (!pass) { showErrors(page, [{ field: 'import-passphrase', message: t('passphrase_required') }]); return; }
    if (!isSealed(doc) && pass.length < MIN_PASSPHRASE) {
      showErrors(page, [{ field: 'import-passphrase', message: t('passphrase_short') }]);
      return;
    }
    showErrors(page, []);
    const button = imp.querySelector('button');
    button.disabled = true;
    say(page, t('unlocking'));
    try {
      const seed = await openKeyFile(doc, pass);
      // a sealed file is its own backup; a plain one is sealed here, and must be backed up
      const keyfile = isSealed(doc) ? doc : await sealKeyFile(seed, pass);
      await saveKey(seed, keyfile, isSealed(doc));
      imp.reset();
      say(page, t('key_ready'));
      await show(page, me);
    } catch (err) {
      say(page, '');
      const code = err instanceof KeyFileError ? err.code : 'bad_key_file';
      showErrors(page, [{ field: code === 'wrong_passphrase' ? 'import-passphrase' : 'import-file', message: t(code) }]);
    } finally {
      button.disabled = false;
    }
  });
}
