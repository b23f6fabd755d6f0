// The node's JSON API, same origin: nothing here ever sends a secret.

export class Refused extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function getJSON(path) {
  const res = await fetch(path, { headers: { Accept: 'application/json' } });
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    const err = (body && body.error) || {};
    throw new Refused(res.status, err.code || 'http_' + res.status, err.message || res.statusText);
  }
  return body;
}

/** POST one signed event (its canonical bytes). 201 stored, 200 already held. */
export async function postEvent(bytes) {
  let res;
  try {
    res = await fetch('/api/v1/events', {
      method: 'POST', body: bytes, headers: { 'Content-Type': 'application/json' },
    });
  } catch (e) {
    throw new Refused(0, 'network', String(e));
  }
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    const err = (body && body.error) || {};
    throw new Refused(res.status, err.code || 'http_' + res.status, err.message || res.statusText);
  }
  return { id: body.id, duplicate: res.status === 200 };
}

/** The node's clock against ours, measured at the midpoint of one round trip (ms). */
export async function clockOffset() {
  const sent = Date.now();
  const info = await getJSON('/api/v1/node');
  const back = Date.now();
  return { offset: Date.parse(info.now) - (sent + back) / 2, info };
}
