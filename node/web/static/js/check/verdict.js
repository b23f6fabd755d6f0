// What the browser concludes about a node's result: its claim beside the result recomputed
// from the evidence, as findings the page puts into words. Pure: no DOM, no fetch.
//
// A finding marks the result untrusted when it can only mean altered evidence or a false
// report: a line that fails its checks (a changed vote fails its signature), a sealed list
// that does not match its seal, a result that differs from the recomputed one, or acts a
// counted seal lists that a node calling the proposal final does not show (a dropped veto).

const counted = (weight) => weight.counted_as ?? 'not_cast';

/** `claim`: the node's report (GET /api/v1/proposals/{id}) or null (a file, no node);
 *  `judged`: rules.judge(); `read`: evidence.readEvidence(). */
export function verdict(claim, judged, read) {
  const findings = [];
  for (const p of read.problems) {
    findings.push(p.code === 'bad_signature'
      ? { code: 'bad_signature', line: p.line, type: p.detail, id: p.id }
      : { code: 'bad_line', line: p.line, problem: p.code, id: p.id });
  }
  if (!judged.admitted) {
    findings.push({ code: 'not_admitted', refusal: judged.refusal });
    return { trusted: false, findings, waiting: 0 };
  }
  const held = new Set(read.doc.events.map((e) => e.id));
  let waiting = 0;
  for (const seal of judged.seals || []) {
    if (seal.status === 'list_mismatch') {
      findings.push({ code: 'list_mismatch', chapter: seal.chapter, seal: seal.seal });
    }
    if (seal.status !== 'counted') continue;
    const missing = (read.doc.sealed[seal.seal] || []).filter((id) => !held.has(id));
    if (!missing.length) continue;
    if (claim && !claim.final) {
      waiting += missing.length; // the node is still fetching them: not a claim yet
    } else {
      findings.push({ code: 'missing_acts', chapter: seal.chapter, count: missing.length,
        id: missing[0] });
    }
  }
  if (claim && claim.tally_hash !== judged.tally_hash) {
    findings.push({ code: 'hash_differs', claimed: claim.tally, recomputed: judged.tally });
    const mine = new Map((judged.weights || []).map((w) => [w.connector, counted(w)]));
    for (const w of claim.trace || []) {
      if (mine.has(w.connector) && mine.get(w.connector) !== counted(w)) {
        findings.push({ code: 'weight_differs', connector: w.connector, claimed: counted(w),
          recomputed: mine.get(w.connector) });
      }
    }
  }
  return { trusted: findings.length === 0, findings, waiting };
}

/** How many counted seals signed the recomputed tally: `{agree, total}`. */
export function sealsAgree(judged) {
  const seals = (judged.seals || []).filter((s) => s.status === 'counted');
  return { agree: seals.filter((s) => s.tally_hash === judged.tally_hash).length,
    total: seals.length };
}
