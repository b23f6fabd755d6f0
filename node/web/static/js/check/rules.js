// The decision rules of chapter-node, a second implementation for the browser ("Check it
// yourself"): from the charter and a set of events, who is who over time (the registry), which
// events count (derived admission), the seals' statuses, the final act set, the tally and its
// `tally_hash`, the lifecycle state. Written from docs/governance.md and docs/protocol.md
// (§1-§6, §11-§12), not from the Python, so that the two can disagree if one of them is wrong.
//
// What it does not do: check signatures, schemas, federation ids or event ids (the caller,
// evidence.js, does that before anything enters here), read a clock (`nowMs` is passed in),
// or know a node's history (so never `amended`). Pure: no DOM, no network; the same in
// Chromium and in Node. What it does judge again, trusting no file: the refusals that need no
// derived state but a node would have made (an act dated before the charter or its proposal,
// on the wrong kind of proposal; a seal whose tally is about something else): such events
// count for nothing here.
import { sha256 } from '../../vendor/noble-hashes@2.4.0/sha2.js';
import canonicalize from '../../vendor/canonicalize@5.1.0/canonicalize.js';

const encoder = new TextEncoder();
const DEFAULT_RULES = { min_open_hours: 72, grace_seconds: 300, seal_timeout_seconds: 86400,
  quorum: 0.5, action_endorsements: 3 };
const DEFAULT_THRESHOLD = 0.5;
const HOUR_MS = 3_600_000n;
// Which acts apply to which kind of proposal (governance.md §7, wrong_proposal_kind).
const ACTS_OF_KIND = {
  consent: new Set(['endorse', 'veto', 'veto_withdraw']),
  action: new Set(['endorse']),
  vote: new Set(['vote', 'delegation']),
};
const ACT_TYPES = new Set(['endorse', 'veto', 'veto_withdraw', 'vote', 'delegation']);

// ---------------------------------------------------------------------------------------------
// Hashes: federation id, tally hash, Merkle root (protocol.md §1, PROTOCOL §6)

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function toHex(bytes) {
  let out = '';
  for (let i = 0; i < bytes.length; i += 1) out += HEX[bytes[i]];
  return out;
}

const NIBBLE = new Uint8Array(128);
for (let i = 0; i < 16; i += 1) NIBBLE['0123456789abcdef'.charCodeAt(i)] = i;

/** Write the 32 bytes a 64-character lowercase hex id spells into `out` at `at`. */
function putHex(out, at, text) {
  for (let i = 0; i < 32; i += 1) {
    out[at + i] = (NIBBLE[text.charCodeAt(2 * i)] << 4) | NIBBLE[text.charCodeAt(2 * i + 1)];
  }
}

function sha256Text(text) {
  return toHex(sha256(encoder.encode(text)));
}

/** The federation id: SHA-256 of the charter's RFC 8785 bytes, as written (no defaults). */
export function federationId(charter) {
  return sha256Text(canonicalize(charter));
}

/** `tally_hash`: SHA-256 of the tally object's RFC 8785 bytes. */
export function tallyHash(tally) {
  return sha256Text(canonicalize(tally));
}

const leafInput = new Uint8Array(33); // 0x00 || id
const nodeInput = new Uint8Array(65); // 0x01 || left || right

// RFC 6962 §2.1: split at the largest power of two below n. Depth is log2(n): no deep stack.
function merkleTreeHash(leaves, lo, hi) {
  const n = hi - lo;
  if (n === 1) return leaves[lo];
  let k = 1;
  while (k * 2 < n) k *= 2;
  const left = merkleTreeHash(leaves, lo, lo + k);
  const right = merkleTreeHash(leaves, lo + k, hi);
  nodeInput[0] = 1;
  nodeInput.set(left, 1);
  nodeInput.set(right, 33);
  return sha256(nodeInput);
}

/** `acts_root`: RFC 6962 Merkle Tree Hash over the ids as raw 32-byte values, sorted. */
export function actsRoot(ids) {
  if (ids.length === 0) return toHex(sha256(new Uint8Array(0)));
  const leaves = [...ids].sort().map((id) => { // lowercase hex sorts as its bytes do
    leafInput[0] = 0;
    putHex(leafInput, 1, id);
    return sha256(leafInput);
  });
  return toHex(merkleTreeHash(leaves, 0, leaves.length));
}

// ---------------------------------------------------------------------------------------------
// Numbers and instants

/** The exact value of a share or a number of hours: its shortest decimal spelling as n/d. */
function fraction(value) {
  const m = /^(\d+)(?:\.(\d+))?(?:e([+-]?\d+))?$/.exec(String(value));
  if (!m) throw codeError('bad_number', `not a plain decimal: ${value}`);
  const decimals = m[2] || '';
  let num = BigInt(m[1] + decimals);
  let den = 10n ** BigInt(decimals.length);
  const exponent = Number(m[3] || 0);
  if (exponent > 0) num *= 10n ** BigInt(exponent);
  if (exponent < 0) den *= 10n ** BigInt(-exponent);
  return { num, den };
}

const instant = (text) => Date.parse(text);

/** Whether `a` is later than `b`: the greater created_at, then the greater id (the latest wins). */
function later(a, b) {
  if (a.at !== b.at) return a.at > b.at;
  return a.id > b.id;
}

/** (created_at, id) order. */
function byTime(a, b) {
  return a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

function codeError(code, message) {
  const e = new Error(message || code);
  e.code = code;
  return e;
}

// ---------------------------------------------------------------------------------------------
// The document, indexed once

function rulesOf(charter) {
  const r = { ...DEFAULT_RULES, ...(charter.rules || {}) };
  return {
    minOpen: fraction(r.min_open_hours),
    graceMs: r.grace_seconds * 1000,
    sealTimeoutMs: r.seal_timeout_seconds * 1000,
    quorum: r.quorum,
    endorsementsNeeded: r.action_endorsements,
  };
}

/** One event as the rules read it: its instant parsed once, the caller's object untouched. */
function record(event) {
  return { id: event.id, type: event.type, author: event.author, chapter: event.chapter,
    at: instant(event.created_at), created_at: event.created_at, body: event.body || {} };
}

function pushTo(map, key, value) {
  const list = map.get(key);
  if (list) list.push(value); else map.set(key, [value]);
}

function indexDoc(doc) {
  const charter = doc.charter;
  const index = {
    charter,
    rules: rulesOf(charter),
    charterAt: instant(charter.created_at),
    byId: new Map(),
    proposals: [],
    actsOn: new Map(), // proposal id -> acts naming it
    globalDelegations: [],
    sealsOn: new Map(),
    members: new Map(), // person key -> member events about it
    sealed: doc.sealed || {},
  };
  for (const event of doc.events) {
    if (index.byId.has(event.id)) continue;
    const e = record(event);
    index.byId.set(e.id, e);
    if (e.type === 'proposal') index.proposals.push(e);
    else if (e.type === 'delegation' && e.body.proposal === null) index.globalDelegations.push(e);
    else if (ACT_TYPES.has(e.type)) pushTo(index.actsOn, e.body.proposal, e);
    else if (e.type === 'seal') pushTo(index.sealsOn, e.body.proposal, e);
    else if (e.type === 'member') pushTo(index.members, e.body.key, e);
  }
  for (const p of index.proposals) p.closes = p.body.closes_at ? instant(p.body.closes_at) : null;
  return index;
}

// ---------------------------------------------------------------------------------------------
// The registry over time (governance.md §1)
//
// The charter, then the effects of adopted proposals, each from its `closes_at` on. Effects are
// numbered in the order they were applied; a "limit" says how many of them a question may see,
// so that a proposal with an effect is counted with only the effects decided before it.

class Registry {
  constructor(charter) {
    this.chapters = new Map(); // slug -> {key, at, order}
    this.nodeKeys = new Map(); // node key -> {at, order}
    this.roles = new Map(); // person key -> [{at, order, connector}] (charter: at -Infinity)
    this.applied = 0;
    for (const c of charter.chapters) this.addChapter(c.slug, c.key, -Infinity, -1);
    for (const c of charter.connectors) {
      pushTo(this.roles, c.key, { at: -Infinity, order: -1, connector: true });
    }
  }

  addChapter(slug, key, at, order) {
    if (!this.chapters.has(slug)) this.chapters.set(slug, { key, at, order });
    if (!this.nodeKeys.has(key)) this.nodeKeys.set(key, { at, order });
  }

  apply(effect, at) {
    const order = this.applied;
    this.applied += 1;
    if (effect.appoint_connector) {
      pushTo(this.roles, effect.appoint_connector.key, { at, order, connector: true });
    } else if (effect.remove_connector) {
      pushTo(this.roles, effect.remove_connector.key, { at, order, connector: false });
    } else if (effect.admit_chapter) {
      const c = effect.admit_chapter;
      this.addChapter(c.slug, c.key, at, order);
    }
  }

  isConnector(key, t, limit) {
    let connector = false;
    for (const r of this.roles.get(key) || []) {
      if (r.order >= limit) break;
      if (r.at <= t) connector = r.connector;
    }
    return connector;
  }

  connectors(t, limit) {
    const out = new Set();
    for (const key of this.roles.keys()) if (this.isConnector(key, t, limit)) out.add(key);
    return out;
  }

  /** The node key of chapter `slug` if it is registered at `t`, else null. */
  chapterKey(slug, t, limit) {
    const c = this.chapters.get(slug);
    return c && c.order < limit && c.at <= t ? c.key : null;
  }

  chaptersAt(t, limit) {
    const out = [];
    for (const [slug, c] of this.chapters) if (c.order < limit && c.at <= t) out.push(slug);
    return out.sort();
  }

  isNodeKey(key, t, limit) {
    const k = this.nodeKeys.get(key);
    return Boolean(k && k.order < limit && k.at <= t);
  }
}

/** Whether a `member` event counts: signed by the node key of the registered chapter it names,
 *  about a key that is no node key (governance.md §1, protocol.md §6.3). */
function memberEventCounts(ctx, e, limit) {
  if (e.at < ctx.index.charterAt) return false;
  const key = ctx.registry.chapterKey(e.chapter, e.at, limit);
  return key !== null && key === e.author && !ctx.registry.isNodeKey(e.body.key, e.at, limit);
}

/** A member at `t`: some chapter's latest counted `member` event about the key says active. */
function isMember(ctx, key, t, limit) {
  const latest = new Map(); // chapter -> latest member event dated by t
  for (const e of ctx.index.members.get(key) || []) {
    if (e.at > t || !memberEventCounts(ctx, e, limit)) continue;
    const held = latest.get(e.chapter);
    if (!held || later(e, held)) latest.set(e.chapter, e);
  }
  for (const e of latest.values()) if (e.body.active === true) return true;
  return false;
}

// ---------------------------------------------------------------------------------------------
// Admission of a proposal (governance.md §7, protocol.md §5 "derived admission")

function closesTooSoon(p, rules) {
  const open = BigInt(p.closes - p.at);
  const { num, den } = rules.minOpen; // hours, exactly
  return open * den < num * HOUR_MS;
}

/** Whether an effect makes sense against the registry at `t`: when proposed (at created_at)
 *  and again when it would apply (at closes_at). */
function effectRefusal(ctx, effect, t, limit) {
  const reg = ctx.registry;
  if (effect.appoint_connector) {
    const a = effect.appoint_connector;
    if (reg.isNodeKey(a.key, t, limit)) return 'node_key_as_person';
    if (reg.chapterKey(a.chapter, t, limit) === null) return 'effect_unknown_chapter';
    if (reg.isConnector(a.key, t, limit)) return 'already_connector';
  } else if (effect.remove_connector) {
    if (!reg.isConnector(effect.remove_connector.key, t, limit)) return 'effect_not_connector';
  } else if (effect.admit_chapter) {
    const c = effect.admit_chapter;
    if (reg.chapterKey(c.slug, t, limit) !== null || reg.isNodeKey(c.key, t, limit)) {
      return 'chapter_exists';
    }
    if (reg.isConnector(c.key, t, limit)) return 'node_key_as_person';
  }
  return null;
}

/** Why proposal `p` does not count under the registry `limit` allows, or null. In the order
 *  a node checks: chapter, author's role, the body (close, escalation, effect).
 *  `escalation(p)` says whether the consent proposal `p` escalates closed vetoed. */
function proposalRefusal(ctx, p, limit, escalation) {
  const { registry: reg, index } = ctx;
  const t = p.at;
  if (t < index.charterAt) return 'before_charter';
  if (reg.chapterKey(p.chapter, t, limit) === null) return 'unknown_chapter';
  if (p.body.kind === 'vote') {
    if (!reg.isConnector(p.author, t, limit)) return 'not_vote_author';
  } else if (!reg.isConnector(p.author, t, limit) && !isMember(ctx, p.author, t, limit)) {
    return 'not_member';
  }
  if (p.closes !== null && closesTooSoon(p, index.rules)) return 'closes_too_soon';
  if (p.body.escalated_from !== undefined && !escalation(p)) return 'bad_escalation';
  if (p.body.effect) return effectRefusal(ctx, p.body.effect, t, limit);
  return null;
}

/** The consent proposal a vote escalates, if it is one that is admitted itself and closed by
 *  the vote's opening (its outcome is for the caller to read). */
function escalatedConsent(ctx, vote, admitted) {
  const consent = ctx.index.byId.get(vote.body.escalated_from);
  if (!consent || consent.type !== 'proposal' || consent.body.kind !== 'consent') return null;
  if (!admitted(consent) || consent.closes > vote.at) return null;
  return consent;
}

// ---------------------------------------------------------------------------------------------
// Acts (derived admission: what a tally may read)

/** Whether act `e` on proposal `p` counts at all: the right kind, dated within the proposal's
 *  life, from a registered chapter, by a Connector (and to a Connector) at its `created_at`. */
function actCounts(ctx, p, e, limit) {
  if (!ACTS_OF_KIND[p.body.kind].has(e.type)) return false;
  if (e.at < p.at) return false;
  if (p.closes !== null && e.at > p.closes) return false;
  return byConnector(ctx, e, limit);
}

/** Derived admission of an act at its `created_at`: from a registered chapter, by a Connector,
 *  and a delegation to another Connector (never to oneself). */
function byConnector(ctx, e, limit) {
  const reg = ctx.registry;
  if (e.at < ctx.index.charterAt) return false;
  if (reg.chapterKey(e.chapter, e.at, limit) === null) return false;
  if (!reg.isConnector(e.author, e.at, limit)) return false;
  if (e.type === 'delegation' && e.body.to !== null) {
    if (e.body.to === e.author) return false; // self_delegation
    if (!reg.isConnector(e.body.to, e.at, limit)) return false;
  }
  return true;
}

/** The act set of `p` (PROTOCOL §6): its admitted acts dated by the close, and (consent and
 *  vote: what a node seals) every admitted global delegation dated by the close. */
function actSet(ctx, p, limit) {
  const acts = (ctx.index.actsOn.get(p.id) || []).filter((e) => actCounts(ctx, p, e, limit));
  if (p.closes !== null) {
    for (const e of ctx.index.globalDelegations) {
      if (e.at <= p.closes && byConnector(ctx, e, limit)) acts.push(e);
    }
  }
  return acts;
}

// ---------------------------------------------------------------------------------------------
// Seals (governance.md §6)

function sealedList(ctx, seal) {
  const { sealed } = ctx.index;
  const list = Object.prototype.hasOwnProperty.call(sealed, seal.id) ? sealed[seal.id] : null;
  return Array.isArray(list) ? list : null;
}

/** A list matches its seal: as many distinct ids as `acts_count`, and their Merkle root.
 *  Honest chapters seal the same list: each distinct list is hashed once. */
function listMatches(ctx, seal, list) {
  if (list.length !== seal.body.acts_count || new Set(list).size !== list.length) return false;
  const content = list.join();
  if (!ctx.roots.has(content)) ctx.roots.set(content, actsRoot(list));
  return ctx.roots.get(content) === seal.body.acts_root;
}

function sealStatus(ctx, p, seal, limit) {
  const { rules } = ctx.index;
  const nodeKey = ctx.registry.chapterKey(seal.chapter, p.closes, limit);
  if (nodeKey === null) return 'not_registered';
  if (nodeKey !== seal.author) return 'not_chapter_node';
  const due = p.closes + rules.graceMs;
  if (seal.at < due) return 'too_early';
  if (seal.at > due + rules.sealTimeoutMs) return 'too_late';
  const list = sealedList(ctx, seal);
  if (list === null) return 'list_missing';
  if (!listMatches(ctx, seal, list)) return 'list_mismatch';
  return 'counted';
}

/** A seal whose tally is about another proposal or kind, or whose hash is wrong, is no seal
 *  of the proposal it names (a node refuses it: bad_seal). */
function sealIsAbout(p, seal) {
  const tally = seal.body.tally || {};
  return tally.proposal === p.id && tally.kind === p.body.kind
    && tallyHash(tally) === seal.body.tally_hash;
}

function bySealOrder(a, b) {
  if (a.chapter !== b.chapter) return a.chapter < b.chapter ? -1 : 1;
  return byTime(a, b);
}

/** Every seal held for `p`, judged. An action proposal is never sealed. */
function sealsOf(ctx, p, limit) {
  if (p.closes === null) return [];
  return (ctx.index.sealsOn.get(p.id) || [])
    .filter((s) => sealIsAbout(p, s))
    .sort(bySealOrder)
    .map((s) => ({ event: s, status: sealStatus(ctx, p, s, limit) }));
}

/** Chapters whose node signed more than one seal of the proposal: any seal signed by the node
 *  key of a chapter registered at the close, whether it counts or not. */
function equivocations(seals) {
  const byChapter = new Map();
  for (const s of seals) {
    if (s.status !== 'not_registered' && s.status !== 'not_chapter_node') {
      pushTo(byChapter, s.event.chapter, s.event.id);
    }
  }
  const out = [];
  for (const [chapter, ids] of byChapter) {
    if (ids.length > 1) out.push({ chapter, seals: [...ids].sort() });
  }
  return out.sort((a, b) => (a.chapter < b.chapter ? -1 : 1));
}

/** Where counted seals exist, only the acts their lists name count (and a list can only leave
 *  acts out); without them, the whole act set. */
function finalActs(ctx, acts, seals) {
  const counted = seals.filter((s) => s.status === 'counted');
  if (counted.length === 0) return acts;
  const listed = new Set();
  for (const s of counted) for (const id of sealedList(ctx, s.event)) listed.add(id);
  return acts.filter((e) => listed.has(e.id));
}

// ---------------------------------------------------------------------------------------------
// Tallies (governance.md §3-§5, PROTOCOL §5)

function emptyTally(p) {
  return { proposal: p.id, kind: p.body.kind, eligible: 0, yes: 0, no: 0, abstain: 0,
    not_cast: 0, vetoes: 0, endorsements: 0, outcome: null };
}

/** The latest act of each author among `acts` that `keep` accepts. */
function latestByAuthor(acts, keep) {
  const out = new Map();
  for (const e of acts) {
    if (!keep(e)) continue;
    const held = out.get(e.author);
    if (!held || later(e, held)) out.set(e.author, e);
  }
  return out;
}

/** Consent: a veto stands if its Connector's latest veto or withdrawal is a veto; only the
 *  Connectors at the close count, for vetoes and endorsements alike. */
function consentTally(ctx, p, acts, limit) {
  const connectors = ctx.registry.connectors(p.closes, limit);
  const stance = latestByAuthor(acts, (e) => e.type === 'veto' || e.type === 'veto_withdraw');
  let vetoes = 0;
  for (const [author, e] of stance) if (e.type === 'veto' && connectors.has(author)) vetoes += 1;
  const endorsers = new Set();
  for (const e of acts) {
    if (e.type === 'endorse' && connectors.has(e.author)) endorsers.add(e.author);
  }
  return { tally: { ...emptyTally(p), eligible: connectors.size, vetoes,
    endorsements: endorsers.size, outcome: vetoes === 0 ? 'adopted' : 'vetoed' },
  adoptedAt: null, weights: null };
}

/** Action, the 3-Connectors rule: the green light comes with the endorsement that brings the
 *  distinct Connectors agreeing (the author first, if a Connector) to the number needed. */
function actionTally(ctx, p, acts, limit) {
  const needed = ctx.index.rules.endorsementsNeeded;
  const agreeing = new Set();
  let adoptedAt = null;
  const agree = (key, when) => {
    if (agreeing.has(key)) return; // a repeated endorsement changes nothing
    agreeing.add(key);
    if (adoptedAt === null && agreeing.size >= needed) adoptedAt = when;
  };
  if (ctx.registry.isConnector(p.author, p.at, limit)) agree(p.author, p.created_at);
  const endorsements = acts.filter((a) => a.type === 'endorse').sort(byTime);
  for (const e of endorsements) agree(e.author, e.created_at);
  return { tally: { ...emptyTally(p), endorsements: agreeing.size,
    outcome: adoptedAt === null ? 'pending' : 'adopted' }, adoptedAt, weights: null };
}

/** The delegation in force for each Connector: the latest for this proposal if any (a revoke
 *  included), else the latest global one. */
function delegationsInForce(p, acts) {
  const own = latestByAuthor(acts, (e) => e.type === 'delegation' && e.body.proposal === p.id);
  const out = latestByAuthor(acts, (e) => e.type === 'delegation' && e.body.proposal === null);
  for (const [author, e] of own) out.set(author, e);
  return out;
}

/** Where each eligible Connector's weight goes. Chains are followed in a loop and where each
 *  one ends is remembered, so a long chain costs its length once, never the JS stack. */
function resolveWeights(eligible, direct, delegation) {
  const delegateOf = (key) => {
    const d = delegation.get(key);
    return d ? d.body.to : null; // a revoke (to: null) is no delegation
  };
  const ends = new Map(); // Connector -> where a weight reaching them ends: {reason, choice}
  const chainEnd = (start) => {
    const path = [];
    const onPath = new Set();
    let cur = start;
    let end;
    for (;;) {
      if (ends.has(cur)) { end = ends.get(cur); break; }
      if (!eligible.has(cur)) { end = { reason: 'not_connector', choice: null }; break; }
      if (onPath.has(cur)) { end = { reason: 'cycle', choice: null }; break; }
      if (direct.has(cur)) { end = { reason: 'delegated', choice: direct.get(cur) }; break; }
      const next = delegateOf(cur);
      if (next === null) { end = { reason: 'dead_end', choice: null }; break; }
      onPath.add(cur);
      path.push(cur);
      cur = next;
    }
    // everyone on the way (a lead-in to a cycle too) ends where the chain ended
    for (const key of path) ends.set(key, end);
    return end;
  };
  const weights = [];
  for (const connector of [...eligible].sort()) {
    if (direct.has(connector)) {
      weights.push({ connector, reason: 'direct', choice: direct.get(connector) });
    } else if (delegateOf(connector) === null) {
      weights.push({ connector, reason: 'no_vote', choice: null });
    } else {
      const { reason, choice } = chainEnd(connector);
      weights.push({ connector, reason, choice });
    }
  }
  return weights;
}

/** Vote: quorum over the eligible weight, threshold over yes + no, both exact fractions. */
function voteTally(ctx, p, acts, limit) {
  const eligible = ctx.registry.connectors(p.closes, limit);
  const direct = new Map();
  for (const [author, e] of latestByAuthor(acts, (a) => a.type === 'vote')) {
    direct.set(author, e.body.choice);
  }
  const weights = resolveWeights(eligible, direct, delegationsInForce(p, acts));
  const count = { yes: 0, no: 0, abstain: 0 };
  for (const w of weights) if (w.choice !== null) count[w.choice] += 1;
  const cast = count.yes + count.no + count.abstain;
  const quorum = fraction(p.body.quorum ?? ctx.index.rules.quorum);
  const threshold = fraction(p.body.threshold ?? DEFAULT_THRESHOLD);
  let outcome = 'rejected';
  if (BigInt(cast) * quorum.den < quorum.num * BigInt(eligible.size)) outcome = 'no_quorum';
  else if (BigInt(count.yes) * threshold.den > threshold.num * BigInt(count.yes + count.no)) {
    outcome = 'adopted';
  }
  return { tally: { ...emptyTally(p), eligible: eligible.size, ...count,
    not_cast: eligible.size - cast, outcome }, adoptedAt: null, weights };
}

const TALLIES = { consent: consentTally, action: actionTally, vote: voteTally };

/** Everything a count needs for proposal `p`. `atClose`: the registry limit for who is who at
 *  its close (eligible Connectors, the chapters whose seals count); `atActs`: the limit its
 *  acts (and an action's author) are admitted under at their own `created_at`. Memoised. */
function countOf(ctx, p, atClose, atActs) {
  const key = `${p.id}:${atClose}:${atActs}`;
  if (ctx.counts.has(key)) return ctx.counts.get(key);
  const acts = actSet(ctx, p, atActs);
  const seals = sealsOf(ctx, p, atClose);
  const counted = finalActs(ctx, acts, seals);
  const limit = p.closes === null ? atActs : atClose;
  const result = { acts, seals, counted, ...TALLIES[p.body.kind](ctx, p, counted, limit) };
  ctx.counts.set(key, result);
  return result;
}

// ---------------------------------------------------------------------------------------------
// The timeline: effects decided one after the other in (closes_at, id) order

function byClose(a, b) {
  return a.closes - b.closes || (a.id < b.id ? -1 : 1);
}

/** Each effect proposal is admitted (at its created_at) and counted with only the effects
 *  decided before it; adopted, its effect applies from its close unless it no longer makes
 *  sense then (skipped). */
function buildTimeline(ctx) {
  const withEffect = ctx.index.proposals.filter((p) => p.body.effect && p.closes !== null)
    .sort(byClose);
  for (const p of withEffect) {
    const limit = ctx.registry.applied;
    const entry = { limit, refusal: null, skipped: null };
    ctx.timeline.set(p.id, entry);
    entry.refusal = proposalRefusal(ctx, p, limit, (vote) => escalationHolds(ctx, vote, limit));
    if (entry.refusal !== null) continue;
    if (countOf(ctx, p, limit, limit).tally.outcome !== 'adopted') continue;
    entry.skipped = effectRefusal(ctx, p.body.effect, p.closes, limit);
    if (entry.skipped === null) ctx.registry.apply(p.body.effect, p.closes);
  }
  ctx.full = ctx.registry.applied;
}

/** While the timeline is built: whether the consent proposal a vote escalates closed vetoed,
 *  counted with the effects decided so far (one with an effect: as the timeline decided it). */
function escalationHolds(ctx, vote, limit) {
  const consent = escalatedConsent(ctx, vote, (c) => {
    const entry = ctx.timeline.get(c.id);
    return entry ? entry.refusal === null : proposalRefusal(ctx, c, limit, () => false) === null;
  });
  if (consent === null) return false;
  const entry = ctx.timeline.get(consent.id);
  return countOf(ctx, consent, entry ? entry.limit : limit, limit).tally.outcome === 'vetoed';
}

// ---------------------------------------------------------------------------------------------
// Context: built once per document

const contexts = new WeakMap();

function contextOf(doc) {
  const held = contexts.get(doc);
  if (held && held.events === doc.events && held.length === doc.events.length
      && held.sealed === doc.sealed && held.charter === doc.charter) return held.ctx;
  const ctx = { index: indexDoc(doc), registry: new Registry(doc.charter), timeline: new Map(),
    counts: new Map(), refusals: new Map(), roots: new Map(), full: 0 };
  buildTimeline(ctx);
  contexts.set(doc, { events: doc.events, length: doc.events.length, sealed: doc.sealed,
    charter: doc.charter, ctx });
  return ctx;
}

/** The registry limit a proposal's close is read under: for one with an effect, only the
 *  effects decided before it; for any other, every effect. */
function closeLimit(ctx, p) {
  const entry = ctx.timeline.get(p.id);
  return entry ? entry.limit : ctx.full;
}

/** Derived admission against the registry the whole document gives (protocol.md §5). */
function refusalOf(ctx, p) {
  if (!ctx.refusals.has(p.id)) {
    ctx.refusals.set(p.id, proposalRefusal(ctx, p, ctx.full, (vote) => {
      const consent = escalatedConsent(ctx, vote, (c) => refusalOf(ctx, c) === null);
      return consent !== null && finalCount(ctx, consent).tally.outcome === 'vetoed';
    }));
  }
  return ctx.refusals.get(p.id);
}

/** Proposal `p` counted as judge() reports it: its acts admitted by the whole registry. */
function finalCount(ctx, p) {
  return countOf(ctx, p, closeLimit(ctx, p), ctx.full);
}

// ---------------------------------------------------------------------------------------------
// Lifecycle (governance.md §6)

/** State and finality at `nowMs`, with the chapters registered at the close that have no
 *  counted seal. Final: every such chapter sealed and every listed act held, or the time for
 *  seals is over. */
function lifecycle(ctx, p, count, limit, nowMs) {
  if (p.closes === null) {
    const adopted = count.tally.outcome === 'adopted';
    return { state: adopted ? 'adopted' : 'pending', final: adopted, missing: [] };
  }
  const sealedBy = new Set(count.seals.filter((s) => s.status === 'counted')
    .map((s) => s.event.chapter));
  const missing = ctx.registry.chaptersAt(p.closes, limit).filter((slug) => !sealedBy.has(slug));
  if (nowMs < p.closes) return { state: 'open', final: false, missing };
  const { graceMs, sealTimeoutMs } = ctx.index.rules;
  const timedOut = nowMs > p.closes + graceMs + sealTimeoutMs;
  const allHeld = count.seals.every((s) => s.status !== 'counted'
    || sealedList(ctx, s.event).every((id) => ctx.index.byId.has(id)));
  const final = timedOut || (missing.length === 0 && allHeld);
  return { state: final ? 'final' : 'closed', final, missing };
}

// ---------------------------------------------------------------------------------------------
// The API

function proposalRecord(ctx, proposalId) {
  const p = ctx.index.byId.get(proposalId);
  if (!p || p.type !== 'proposal') {
    throw codeError('unknown_proposal', `no proposal ${proposalId} in this document`);
  }
  return p;
}

/** One proposal, everything decided: admission, tally, seals, state, and where weights went. */
export function judge(doc, proposalId, nowMs) {
  const ctx = contextOf(doc);
  const p = proposalRecord(ctx, proposalId);
  const refusal = refusalOf(ctx, p);
  if (refusal !== null) return { proposal: p.id, kind: p.body.kind, admitted: false, refusal };
  const count = finalCount(ctx, p);
  const life = lifecycle(ctx, p, count, closeLimit(ctx, p), nowMs);
  const tally = { ...count.tally };
  return {
    proposal: p.id,
    kind: p.body.kind,
    admitted: true,
    refusal: null,
    tally,
    tally_hash: tallyHash(tally),
    adopted_at: count.adoptedAt,
    state: life.state,
    final: life.final,
    seals: count.seals.map(({ event, status }) => ({ seal: event.id, chapter: event.chapter,
      created_at: event.created_at, acts_count: event.body.acts_count,
      acts_root: event.body.acts_root, tally_hash: event.body.tally_hash, status })),
    missing_seals: life.missing, // the chapters registered at the close with no counted seal
    equivocations: equivocations(count.seals),
    counted_acts: count.counted.map((e) => e.id).sort(),
    // as the node's report names them: counted_as is yes, no, abstain or not_cast
    weights: (count.weights || []).map((w) => ({ connector: w.connector, reason: w.reason,
      counted_as: w.choice ?? 'not_cast' })),
  };
}

/** Every admitted proposal with its state and outcome, in (created_at, id) order. */
export function proposals(doc, nowMs) {
  const ctx = contextOf(doc);
  return [...ctx.index.proposals].sort(byTime)
    .filter((p) => refusalOf(ctx, p) === null)
    .map((p) => {
      const j = judge(doc, p.id, nowMs);
      return { id: p.id, kind: p.body.kind, title: p.body.title, created_at: p.created_at,
        closes_at: p.body.closes_at ?? null, state: j.state, outcome: j.tally.outcome,
        tally_hash: j.tally_hash };
    });
}
