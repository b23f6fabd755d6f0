// Key files exactly as `chapter-node keygen` writes them (node/keys.py), so a person moves
// between browser and terminal with one file:
//   plain:  {"type": "chapter-node-key", "v": 1, "public", "seed"}
//   sealed: {"type": "chapter-node-key", "v": 1, "public", "kdf": "argon2id", "opslimit",
//            "memlimit", "salt", "box"}
// `box` = nonce (24) ‖ Poly1305 tag (16) ‖ XSalsa20 ciphertext of the 32-byte seed (NaCl
// secretbox), under Argon2id(passphrase as UTF-8, salt, t = opslimit, m = memlimit / 1024 KiB,
// p = 1), libsodium's crypto_pwhash. The passphrase is used exactly as typed, as the CLI does.
import { argon2idAsync } from '../vendor/noble-hashes@2.4.0/argon2.js';
import { xsalsa20poly1305 } from '../vendor/noble-ciphers@2.4.0/salsa.js';
import { getPublicKeyAsync } from '../vendor/noble-ed25519@3.2.0/index.js';
import { b64url, b64urlDecode } from './event.js';

export const KEY_FILE_TYPE = 'chapter-node-key';
export const OPSLIMIT = 2; // libsodium crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE
export const MEMLIMIT = 64 * 1024 * 1024; // ..._MEMLIMIT_INTERACTIVE
const MAX_MEMLIMIT = 256 * 1024 * 1024; // a file asking more is refused, not obeyed
const MAX_OPSLIMIT = 10;

export class KeyFileError extends Error {
  constructor(code, message) {
    super(message || code);
    this.code = code;
  }
}

async function derive(passphrase, salt, opslimit, memlimit, onProgress) {
  return argon2idAsync(new TextEncoder().encode(passphrase), salt, {
    t: opslimit, m: memlimit / 1024, p: 1, dkLen: 32, version: 0x13, onProgress,
  });
}

export function parseKeyFile(text) {
  let doc;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new KeyFileError('bad_key_file');
  }
  if (!doc || typeof doc !== 'object' || doc.type !== KEY_FILE_TYPE || doc.v !== 1
      || typeof doc.public !== 'string') {
    throw new KeyFileError('bad_key_file');
  }
  return doc;
}

export function isSealed(doc) {
  return 'box' in doc;
}

/** The 32-byte seed a key file holds; `passphrase` is needed when it is sealed. */
export async function openKeyFile(doc, passphrase, onProgress) {
  let seed;
  if (isSealed(doc)) {
    if (!passphrase) throw new KeyFileError('passphrase_required');
    const { opslimit, memlimit } = doc;
    if (doc.kdf !== 'argon2id' || !Number.isInteger(opslimit) || !Number.isInteger(memlimit)
        || opslimit < 1 || opslimit > MAX_OPSLIMIT || memlimit < 8192 || memlimit > MAX_MEMLIMIT
        || memlimit % 1024 !== 0) {
      throw new KeyFileError('bad_key_file');
    }
    let salt, box;
    try {
      salt = b64urlDecode(doc.salt);
      box = b64urlDecode(doc.box);
    } catch {
      throw new KeyFileError('bad_key_file');
    }
    if (salt.length !== 16 || box.length !== 24 + 16 + 32) throw new KeyFileError('bad_key_file');
    const key = await derive(passphrase, salt, opslimit, memlimit, onProgress);
    try {
      seed = xsalsa20poly1305(key, box.subarray(0, 24)).decrypt(box.subarray(24));
    } catch {
      throw new KeyFileError('wrong_passphrase');
    }
  } else {
    try {
      seed = b64urlDecode(doc.seed || '');
    } catch {
      throw new KeyFileError('bad_key_file');
    }
    if (seed.length !== 32) throw new KeyFileError('bad_key_file');
  }
  if (b64url(await getPublicKeyAsync(seed)) !== doc.public) throw new KeyFileError('bad_key_file');
  return seed;
}

/** A sealed key file for `seed`, as `chapter-node keygen --passphrase-env` writes it. */
export async function sealKeyFile(seed, passphrase, onProgress) {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const nonce = crypto.getRandomValues(new Uint8Array(24));
  const key = await derive(passphrase, salt, OPSLIMIT, MEMLIMIT, onProgress);
  const sealed = xsalsa20poly1305(key, nonce).encrypt(seed);
  const box = new Uint8Array(24 + sealed.length);
  box.set(nonce);
  box.set(sealed, 24);
  return {
    type: KEY_FILE_TYPE, v: 1, public: b64url(await getPublicKeyAsync(seed)), kdf: 'argon2id',
    opslimit: OPSLIMIT, memlimit: MEMLIMIT, salt: b64url(salt), box: b64url(box),
  };
}

export function newSeed() {
  return crypto.getRandomValues(new Uint8Array(32));
}
