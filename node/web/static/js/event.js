// Events exactly as the node builds them (PROTOCOL §2): RFC 8785 canonical bytes, an Ed25519
// signature over the event without `sig`, and the id: SHA-256 of the canonical event with it.
import canonicalize from '../vendor/canonicalize@5.1.0/canonicalize.js';

const encoder = new TextEncoder();

export function b64url(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function b64urlDecode(text) {
  const s = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

export function canonical(value) {
  return encoder.encode(canonicalize(value));
}

export async function sha256hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The protocol's timestamp: RFC 3339 UTC with milliseconds. */
export function timestamp(ms = Date.now()) {
  return new Date(ms).toISOString();
}

/** Sign `{federation, chapter, type, body, created_at, author}` with `signer` (bytes -> 64
 *  signature bytes). Returns the event, its canonical bytes and its id; `unsigned` is kept
 *  as it was (nothing here changes its input). */
export async function signEvent(unsigned, signer) {
  const draft = { v: 1, ...unsigned };
  const sig = b64url(await signer(canonical(draft)));
  const event = { ...draft, sig };
  const bytes = canonical(event);
  return { event, bytes, id: await sha256hex(bytes) };
}
