// Reading export lines (PROTOCOL §7) in the browser and checking each one, trusting no node:
// the charter gives the federation id; every event must have the envelope, the fields the
// decision rules read, this federation, a signature by its author, and its id is recomputed
// from its canonical bytes (RFC 8785, SHA-256). What fails is named by line, never dropped
// silently. The rules themselves are in rules.js; this module only says what may enter them.
//
// Not checked here (they cannot change a result the rules compute): the full JSON Schemas of
// comments and feedback requests, text lengths, and duplicate member names (JSON.parse keeps
// the last; if that changes the event, its signature no longer verifies).
import canonicalize from '../../vendor/canonicalize@5.1.0/canonicalize.js';
import { sha256 } from '../../vendor/noble-hashes@2.4.0/sha2.js';
import * as ed from '../../vendor/noble-ed25519@3.2.0/index.js';
import { federationId, tallyHash } from './rules.js';

const encoder = new TextEncoder();
const HEX_ID = /^[0-9a-f]{64}$/;
const KEY = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;
const SIG = /^[A-Za-z0-9_-]{85}[AQgw]$/;
const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const ENVELOPE = ['author', 'body', 'chapter', 'created_at', 'federation', 'sig', 'type', 'v'];
const TALLY = ['abstain', 'eligible', 'endorsements', 'kind', 'no', 'not_cast', 'outcome',
  'proposal', 'vetoes', 'yes'];

/** A line that cannot enter the count: `code` names the check, `line` the line number. */
export class EvidenceProblem {
  constructor(line, code, id = null, detail = '') {
    Object.assign(this, { line, code, id, detail });
  }
}

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function b64urlDecode(text) {
  const s = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function isInstant(text) {
  return typeof text === 'string' && INSTANT.test(text)
    && new Date(Date.parse(text)).toISOString() === text;
}

const isId = (v) => typeof v === 'string' && HEX_ID.test(v);
const isKey = (v) => typeof v === 'string' && KEY.test(v);
const isShare = (v) => v === undefined || (typeof v === 'number' && v >= 0 && v <= 1);
const isCount = (v) => Number.isSafeInteger(v) && v >= 0;

function effectOk(effect) {
  if (effect === undefined) return true;
  if (!isObject(effect) || Object.keys(effect).length !== 1) return false;
  const [[what, e]] = Object.entries(effect);
  if (!isObject(e)) return false;
  if (what === 'appoint_connector') {
    return isKey(e.key) && typeof e.name === 'string' && SLUG.test(e.chapter ?? '');
  }
  if (what === 'remove_connector') return isKey(e.key);
  if (what === 'admit_chapter') {
    return SLUG.test(e.slug ?? '') && isKey(e.key) && typeof e.url === 'string';
  }
  return false;
}

function proposalOk(b) {
  if (typeof b.title !== 'string' || !/\S/.test(b.title)) return false;
  if (!['consent', 'action', 'vote'].includes(b.kind)) return false;
  if ((b.kind === 'action') !== (b.closes_at === undefined)) return false;
  if (b.closes_at !== undefined && !isInstant(b.closes_at)) return false;
  if (b.kind === 'action' && (b.effect || b.escalated_from || 'quorum' in b || 'threshold' in b)) {
    return false;
  }
  if (b.kind === 'consent' && (b.escalated_from || 'quorum' in b || 'threshold' in b)) return false;
  return effectOk(b.effect) && isShare(b.quorum) && isShare(b.threshold)
    && (b.escalated_from === undefined || isId(b.escalated_from));
}

// What the rules read of each body: a line whose body lacks it, or has it in another shape, is
// refused as the node's schema would refuse it.
const BODY = {
  proposal: proposalOk,
  endorse: (b) => isId(b.proposal),
  veto: (b) => isId(b.proposal) && typeof b.reason === 'string' && /\S/.test(b.reason),
  veto_withdraw: (b) => isId(b.proposal),
  vote: (b) => isId(b.proposal) && ['yes', 'no', 'abstain'].includes(b.choice),
  delegation: (b) => 'to' in b && 'proposal' in b && (b.to === null || isKey(b.to))
    && (b.proposal === null || isId(b.proposal)),
  seal: (b) => isId(b.proposal) && HEX_ID.test(b.acts_root ?? '') && isCount(b.acts_count)
    && isObject(b.tally) && canonicalize(Object.keys(b.tally).sort()) === canonicalize(TALLY)
    && HEX_ID.test(b.tally_hash ?? ''),
  member: (b) => isKey(b.key) && typeof b.active === 'boolean',
  chapter_url: (b) => typeof b.url === 'string',
  comment: (b) => isId(b.proposal) && typeof b.text === 'string',
  feedback_request: (b) => typeof b.title === 'string',
};

/** Why `event` cannot be an event of federation `federation`, or null. */
function shapeProblem(event, federation) {
  if (!isObject(event)) return 'not_an_object';
  const keys = Object.keys(event).sort();
  if (canonicalize(keys) !== canonicalize(ENVELOPE)) return 'unknown_field';
  if (event.v !== 1) return 'unsupported_version';
  if (!isKey(event.author) || !SIG.test(event.sig)) return 'bad_base64';
  if (!(event.type in BODY) || !SLUG.test(event.chapter) || !isInstant(event.created_at)
      || !isObject(event.body) || !BODY[event.type](event.body)) return 'schema_violation';
  if (event.federation !== federation) return 'wrong_federation';
  if (event.type === 'seal' && tallyHash(event.body.tally) !== event.body.tally_hash) {
    return 'bad_seal';
  }
  return null;
}

/** Parse export `text` into lines: the charter, events (with ids), sealed lists. */
export function parseLines(text) {
  const out = { charter: null, federation: null, events: [], sealed: {}, problems: [],
    lineOf: new Map() };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i += 1) {
    const raw = lines[i].replace(/\r$/, '');
    if (!raw.trim()) continue;
    const number = i + 1;
    let obj;
    try {
      obj = JSON.parse(raw);
    } catch {
      out.problems.push(new EvidenceProblem(number, 'not_json'));
      continue;
    }
    if (out.charter === null) {
      if (!isObject(obj) || !isObject(obj.charter) || Object.keys(obj).length !== 1) {
        out.problems.push(new EvidenceProblem(number, 'no_charter'));
        return out; // nothing can be judged without the charter
      }
      out.charter = obj.charter;
      out.federation = federationId(obj.charter);
      continue;
    }
    if (isObject(obj) && 'sealed' in obj) {
      const s = obj.sealed;
      if (!isObject(s) || !isId(s.seal) || !Array.isArray(s.acts) || !s.acts.every(isId)) {
        out.problems.push(new EvidenceProblem(number, 'bad_export'));
      } else {
        out.sealed[s.seal] = s.acts;
        out.lineOf.set('sealed:' + s.seal, number);
      }
      continue;
    }
    const problem = shapeProblem(obj, out.federation);
    const id = isObject(obj) ? hex(sha256(encoder.encode(canonicalize(obj)))) : null;
    if (problem) {
      out.problems.push(new EvidenceProblem(number, problem, id));
      continue;
    }
    if (out.lineOf.has(id)) continue; // the same event twice: one event
    out.lineOf.set(id, number);
    out.events.push({ ...obj, id });
  }
  if (out.charter === null) out.problems.push(new EvidenceProblem(1, 'no_charter'));
  return out;
}

let subtleEd25519 = null; // whether this browser's WebCrypto verifies Ed25519 (probed once)

async function webCryptoEd25519() {
  if (subtleEd25519 === null) {
    try {
      await crypto.subtle.importKey('raw', new Uint8Array(32).fill(1), { name: 'Ed25519' },
        false, ['verify']);
      subtleEd25519 = true;
    } catch {
      subtleEd25519 = false;
    }
  }
  return subtleEd25519;
}

/** Verify every event's signature (Ed25519 over its canonical form without `sig`).
 *  Returns the events whose signature fails; `progress(done, total)` is told as it goes. */
export async function badSignatures(events, progress = () => {}) {
  const fast = await webCryptoEd25519();
  const keys = new Map();
  const keyOf = (author) => {
    if (!keys.has(author)) {
      const raw = b64urlDecode(author);
      keys.set(author, fast
        ? crypto.subtle.importKey('raw', raw, { name: 'Ed25519' }, false, ['verify'])
          .catch(() => null)
        : Promise.resolve(raw));
    }
    return keys.get(author);
  };
  const check = async (event) => {
    const { sig, id, ...unsigned } = event;
    const message = encoder.encode(canonicalize(unsigned));
    const signature = b64urlDecode(sig);
    const key = await keyOf(event.author);
    if (key === null) return false;
    try {
      return fast
        ? await crypto.subtle.verify({ name: 'Ed25519' }, key, signature, message)
        : await ed.verifyAsync(signature, message, key);
    } catch {
      return false;
    }
  };
  const bad = [];
  const step = 500; // a few hundred in flight: fast, and the page can say how far it is
  for (let i = 0; i < events.length; i += step) {
    const slice = events.slice(i, i + step);
    const verdicts = await Promise.all(slice.map(check));
    verdicts.forEach((ok, j) => { if (!ok) bad.push(slice[j]); });
    progress(Math.min(i + step, events.length), events.length);
  }
  return bad;
}

/** Read and check export `text`: `{doc, problems, lineOf}` where `doc` holds only events that
 *  passed every check (the rules' input), and `problems` names each line that did not. */
export async function readEvidence(text, progress) {
  const parsed = parseLines(text);
  const bad = new Set(await badSignatures(parsed.events, progress));
  for (const event of bad) {
    parsed.problems.push(new EvidenceProblem(parsed.lineOf.get(event.id), 'bad_signature',
      event.id, event.type));
  }
  const events = parsed.events.filter((e) => !bad.has(e));
  return {
    doc: { charter: parsed.charter, events, sealed: parsed.sealed },
    federation: parsed.federation,
    problems: parsed.problems.sort((a, b) => a.line - b.line),
    lineOf: parsed.lineOf,
  };
}
