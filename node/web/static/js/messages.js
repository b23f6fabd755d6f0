// Words the scripts show, translated on the server (templates/_messages.html): none here.
let table = null;

function load() {
  if (table === null) {
    const block = document.getElementById('messages');
    table = block ? JSON.parse(block.textContent) : {};
  }
  return table;
}

/** The translated message `key` ("refused.not_connector" reaches into groups), `{name}`
 *  placeholders filled from `vars`. */
export function t(key, vars = {}) {
  let value = load();
  for (const part of key.split('.')) value = value == null ? undefined : value[part];
  if (typeof value !== 'string') return key;
  return value.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

/** The message for a refusal code from the node, in the viewer's words. */
export function refusal(code, message) {
  const refused = load().refused || {};
  return code in refused ? t('refused.' + code) : t('refused.other', { message });
}
