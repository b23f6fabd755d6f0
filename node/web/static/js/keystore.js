// The key this browser signs with, kept in IndexedDB: the sealed key file (the backup the CLI
// reads) and, where the browser has WebCrypto Ed25519, a non-extractable CryptoKey that signs
// without the passphrase and whose secret no script can read back. Without WebCrypto Ed25519
// the seed is opened from the sealed file when an act is signed and kept in memory for the
// page only. No request ever carries the secret.
import { signAsync } from '../vendor/noble-ed25519@3.2.0/index.js';
import { b64url } from './event.js';

const DB = 'chapter-node';
const STORE = 'keys';
const ID = 'me';
let pageSeed = null; // fallback only: the opened seed, for this page's life

function db() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function tx(mode, run) {
  const conn = await db();
  return new Promise((resolve, reject) => {
    const t = conn.transaction(STORE, mode);
    const req = run(t.objectStore(STORE));
    t.oncomplete = () => { conn.close(); resolve(req && req.result); };
    t.onerror = () => { conn.close(); reject(t.error); };
  });
}

/** The stored record, or null: {public, keyfile, cryptoKey|null, backedUp}. */
export async function loadKey() {
  return (await tx('readonly', (s) => s.get(ID))) || null;
}

export async function forgetKey() {
  pageSeed = null;
  await tx('readwrite', (s) => s.delete(ID));
}

export async function markBackedUp() {
  const record = await loadKey();
  if (record) await tx('readwrite', (s) => s.put({ ...record, backedUp: true }, ID));
}

/** A non-extractable Ed25519 signing key from a seed, or null where WebCrypto lacks Ed25519. */
async function webCryptoKey(seed, publicKey) {
  try {
    const jwk = { kty: 'OKP', crv: 'Ed25519', d: b64url(seed), x: publicKey, ext: false };
    return await crypto.subtle.importKey('jwk', jwk, { name: 'Ed25519' }, false, ['sign']);
  } catch {
    return null;
  }
}

/** Keep a key: `keyfile` sealed (the backup), `seed` opened from it (never stored as is). */
export async function saveKey(seed, keyfile, backedUp) {
  const cryptoKey = await webCryptoKey(seed, keyfile.public);
  pageSeed = cryptoKey ? null : seed;
  const record = { public: keyfile.public, keyfile, cryptoKey, backedUp, saved: Date.now() };
  await tx('readwrite', (s) => s.put(record, ID));
  if (navigator.storage && navigator.storage.persist) navigator.storage.persist().catch(() => {});
  return record;
}

/** A signer for `record`: bytes -> 64 signature bytes. `askPassphrase` is called only in the
 *  fallback, when the seed is not open yet on this page. */
export function signer(record, askPassphrase) {
  return async (bytes) => {
    if (record.cryptoKey) {
      return new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, record.cryptoKey, bytes));
    }
    if (!pageSeed) {
      const { openKeyFile } = await import('./keyfile.js');
      pageSeed = await openKeyFile(record.keyfile, await askPassphrase());
    }
    return signAsync(bytes, pageSeed);
  };
}
