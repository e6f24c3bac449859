"""Match a take's transcript to its scene's dialogue: which script line was delivered where, and how.

A pure function of (the scene's dialogue lines, the take's recognised words), so it is tested without
an index. The alignment is a dynamic programme over the take's words (normalised with
:mod:`indexer.textnorm`, as line search does) against every dialogue line of the scene at once:

* inside a line, words are matched in order, scored by fuzzy similarity (rapidfuzz ratio) or equal
  Metaphone keys, weighted (stopwords count half); script words can be skipped (deletions) and
  spoken words added (insertions: ad-libs) at a cost;
* a delivery can start at the beginning of *any* line (out-of-order lines, restarts, a line said twice
  is two deliveries); going on to the next line in the script costs less than jumping elsewhere;
* a delivery may stop anywhere (a false start, a line cut short); what was not said is reported;
* words between deliveries (slate, "action", "cut", chatter) are off-script and cost little.

Each delivery then gets its word span, a score, and a wdiff-style diff in the notation line search
uses: ``[-script words not said-]`` and ``{+words said, not in the script+}``; words outside any line but
inside the same utterance as a delivery's edge are attached to it as added words (an ad-lib before or
after the scripted words). A partial delivery followed later in the take by a fuller one of the same
line is a false start.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..textnorm import STOPWORDS, normalize_words, phonetic, split_words, tokens

NEG = -1e6              # impossible (finite, so sums stay exact enough)
_SEG = 1e7              # per-line offset for segment-wise running maxima
TOKEN_MATCH = 0.60      # fuzzy similarity below this is a substitution
PHONETIC_SIM = 0.85     # similarity given to tokens with the same Metaphone key
DIFF_EQUAL = 0.80       # in the diff, matched words this similar are shown as said (else [-x-]{+y+})


@dataclass(frozen=True)
class MatchParams:
    stopword_weight: float = 0.5
    deletion: float = 0.35      # per script word skipped (times its weight)
    insertion: float = 0.35     # per word added inside a line
    substitution: float = 0.6   # per script word replaced by another (times its weight)
    off_script: float = 0.15    # per word said outside any line
    jump_next: float = 0.3      # starting the next line in script order
    jump_any: float = 1.0       # starting any other line (out of order, restart)
    min_content: int = 1        # a delivery must match this many non-stopwords (or most of a short line)
    full: float = 0.75          # share of the line reached (not skipped) from which it counts as delivered
    # A delivery stands on its own when this many of the line's content words were heard as written
    # (similarity >= DIFF_EQUAL), in order, covering this share of the line; any other (a short line,
    # "Me?", "Hello.") counts only inside a run: next to a delivery of the line before or after it in
    # the script, in that order, at most ``run_gap`` seconds apart. Tuned on the fixture shoot and on
    # the reference transcripts of sample.wav and AMI ES2011a against unrelated screenplays
    # (charade-1963-draft, Brick-and-Steel): see tests/test_script_unrelated.py.
    anchor_words: int = 2
    anchor_coverage: float = 0.5
    run_gap: float = 8.0
    # A take without a scene in its name belongs to the scene whose dialogue it holds only when this
    # many of the scene's content words were heard as written, in its deliveries.
    scene_words: int = 4


@dataclass
class SceneLine:
    """A dialogue line of the scene, as the matcher sees it."""

    line_id: str
    character: str
    text: str


@dataclass
class TakeWord:
    start: float
    end: float
    text: str
    utterance: int = 0          # index of the transcript line (utterance) it belongs to
    speaker: str | None = None
    utt_start: float | None = None  # the utterance's edges (refined on the sound by the indexer)
    utt_end: float | None = None


@dataclass
class Delivery:
    line_id: str
    character: str
    first_word: int             # index into the take's words (inclusive)
    last_word: int              # inclusive
    start: float
    end: float
    score: float                # 0..1: F-measure of script words delivered and words said on script
    coverage: float             # share of the line's (weighted) words delivered
    reach: float                # share of the line's (weighted) words said or replaced (not skipped)
    delivered: str              # the words said, as recognised
    diff: str                   # wdiff notation against the script line
    added: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    substituted: list[tuple[str, str]] = field(default_factory=list)
    status: str = "delivered"   # delivered | partial | false_start
    attempt: int = 1            # nth delivery of this line in the take
    speaker: str | None = None  # the transcript's speaker label for these words, when known
    heard: int = 0              # the line's content words heard as written (similarity >= DIFF_EQUAL)
    line_index: int = 0         # position of the line in the scene's dialogue


@dataclass
class SceneMatch:
    deliveries: list[Delivery]
    total: float                # alignment score (comparable between scenes for the same take)
    matched_weight: float       # sum of weighted similarities of matched script words

    @property
    def heard(self) -> int:
        """The scene's content words heard as written, over its deliveries."""
        return sum(d.heard for d in self.deliveries)

    def missing_lines(self, lines: list[SceneLine]) -> list[str]:
        said = {d.line_id for d in self.deliveries}
        return [ln.line_id for ln in lines if ln.line_id not in said]


# ------------------------------------------------------------------------------------------ tokens

@dataclass
class _Tokens:
    toks: list[str]
    src: list[int]              # source word index per token
    line: list[int]             # (script side) line index per token


def _script_tokens(lines: list[SceneLine]) -> tuple[_Tokens, list[list[str]]]:
    toks, src, line_of = [], [], []
    words_per_line: list[list[str]] = []
    for li, ln in enumerate(lines):
        words = split_words(ln.text)
        words_per_line.append(words)
        for t, wi in normalize_words(words):
            toks.append(t)
            src.append(wi)
            line_of.append(li)
    return _Tokens(toks, src, line_of), words_per_line


def _similarity(a: list[str], b: list[str]) -> np.ndarray:
    """len(a) x len(b) similarity in [0, 1]: rapidfuzz ratio, or PHONETIC_SIM for equal Metaphone keys."""
    from rapidfuzz.fuzz import ratio
    from rapidfuzz.process import cdist

    if not a or not b:
        return np.zeros((len(a), len(b)), dtype=np.float32)
    ua, ia = np.unique(np.asarray(a, dtype=object), return_inverse=True)
    ub, ib = np.unique(np.asarray(b, dtype=object), return_inverse=True)
    sim = cdist(list(ua), list(ub), scorer=ratio, dtype=np.float32) / 100.0
    pa = [phonetic(t) for t in ua]
    pb = [phonetic(t) for t in ub]
    pb_index: dict[str, list[int]] = {}
    for j, k in enumerate(pb):
        if len(k) >= 2:
            pb_index.setdefault(k, []).append(j)
    for i, k in enumerate(pa):
        for j in pb_index.get(k, ()):
            if sim[i, j] < PHONETIC_SIM:
                sim[i, j] = PHONETIC_SIM
    return sim[np.ix_(ia.ravel(), ib.ravel())]


# ------------------------------------------------------------------------------------------ matching

def match_scene(lines: list[SceneLine], words: list[TakeWord], params: MatchParams = MatchParams()) -> SceneMatch:
    """Align a take's words to a scene's dialogue lines; return the deliveries in take order."""
    lines = [ln for ln in lines if tokens(ln.text)]          # a line of punctuation only cannot be matched
    script, script_words = _script_tokens(lines)
    take_norm = normalize_words([w.text for w in words])
    t_toks = [t for t, _ in take_norm]
    t_src = [wi for _, wi in take_norm]
    if not script.toks or not t_toks:
        return SceneMatch([], 0.0, 0.0)

    N, M, L = len(t_toks), len(script.toks), len(lines)
    weights = np.array([params.stopword_weight if t in STOPWORDS else 1.0 for t in script.toks])
    sim = _similarity(t_toks, script.toks)                                 # N x M
    gain = np.where(sim >= TOKEN_MATCH, weights[None, :] * (2.0 * sim - 1.0),
                    -params.substitution * weights[None, :])

    # State layout: line l has positions 0..n_l at base[l] .. base[l] + n_l.
    n_tok = np.bincount(np.asarray(script.line, dtype=np.int64), minlength=L)
    base = np.concatenate([[0], np.cumsum(n_tok + 1)[:-1]]).astype(np.int64)
    tok_base = np.concatenate([[0], np.cumsum(n_tok)[:-1]]).astype(np.int64)
    S = int(M + L)
    tok_of_state = np.full(S, -1, dtype=np.int64)
    line_of_state = np.empty(S, dtype=np.int64)
    for li in range(L):
        line_of_state[base[li]: base[li] + n_tok[li] + 1] = li
        tok_of_state[base[li] + 1: base[li] + n_tok[li] + 1] = tok_base[li] + np.arange(n_tok[li])
    has_tok = tok_of_state >= 0
    del_cost = np.where(has_tok, params.deletion * weights[np.maximum(tok_of_state, 0)], 0.0)
    dcum = np.zeros(S)
    for li in range(L):
        seg = slice(base[li], base[li] + n_tok[li] + 1)
        dcum[seg] = np.cumsum(del_cost[seg])
    line_w = np.array([weights[tok_base[li]: tok_base[li] + n_tok[li]].sum() for li in range(L)])
    scale = np.minimum(1.0, line_w / 2.0)
    j_next = params.jump_next * scale
    j_any = params.jump_any * scale
    p0 = base                                                                # entry states
    tok_cols = np.maximum(tok_of_state, 0)

    A = np.full(S, NEG)
    F = np.full(L + 1, NEG)
    F[0] = 0.0
    ptr_ins = np.zeros((N, S), dtype=bool)
    b_orig = np.zeros((N, S), dtype=np.int32)
    entry_src = np.zeros((N, L), dtype=np.int64)     # >=0: H state; <0: F index -(x+1)
    f_src = np.full((N, L + 1), -1, dtype=np.int64)  # -1: stayed in F; else H state it left
    arange_s = np.arange(S)

    seg_start = base + 1                                                     # first token state of each line
    offset = line_of_state * _SEG                                            # keeps running maxima in their line
    lines_idx = np.arange(L)
    for r in range(N):
        # best state of each line (p >= 1) before this token
        masked = np.where(has_tok, A, NEG)
        best_line = np.maximum.reduceat(masked, seg_start)[:L] if L else np.zeros(0)
        is_best = has_tok & (masked >= best_line[line_of_state])
        best_line_state = np.maximum.reduceat(np.where(is_best, arange_s, -1), seg_start)[:L]
        # entries: from anywhere (out of order, restart), or on from the previous line / the words after it
        a_arg = int(np.argmax(A))
        f_arg = int(np.argmax(F))
        if A[a_arg] >= F[f_arg]:
            gmax, gsrc = A[a_arg], a_arg
        else:
            gmax, gsrc = F[f_arg], -(f_arg + 1)
        val = gmax - j_any
        src = np.full(L, gsrc, dtype=np.int64)
        prev_line = np.concatenate([[NEG], best_line[:-1]]) - j_next
        prev_state = np.concatenate([[0], best_line_state[:-1]])
        better = prev_line > val
        val = np.where(better, prev_line, val)
        src = np.where(better, prev_state, src)
        from_f = F[:L] - j_next                      # F[0] (nothing yet) for line 0, F[l] after line l-1
        better = from_f > val
        val = np.where(better, from_f, val)
        src = np.where(better, -(lines_idx + 1), src)
        A0 = A.copy()
        A0[p0] = val
        entry_src[r] = src
        # deletions (closure along each line)
        V = A0 + dcum + offset
        run = np.maximum.accumulate(V)
        idx = np.maximum.accumulate(np.where(V >= run, arange_s, 0))
        B = run - offset - dcum
        b_orig[r] = idx
        # consume take token r
        g = gain[r, tok_cols]
        prev = np.concatenate([[NEG], B[:-1]])
        diag = np.where(has_tok, prev + g, NEG)
        ins = np.where(has_tok, B - params.insertion, NEG)
        use_ins = ins > diag
        ptr_ins[r] = use_ins
        A_new = np.maximum(np.where(use_ins, ins, diag), NEG)
        F_new = np.empty(L + 1)
        F_new[0] = F[0] - params.off_script
        stay = F[1:]
        take_leave = best_line > stay
        F_new[1:] = np.where(take_leave, best_line, stay) - params.off_script
        f_src[r, 1:] = np.where(take_leave, best_line_state, -1)
        A, F = A_new, F_new

    # ---------------------------------------------------------------- backtrack
    a_arg, f_arg = int(np.argmax(A)), int(np.argmax(F))
    total = float(max(A[a_arg], F[f_arg]))
    state: tuple[str, int] = ("H", a_arg) if A[a_arg] >= F[f_arg] else ("F", f_arg)
    events: list[tuple] = []        # reversed: ("m", r, k) ("i", r, line) ("d", k) ("f", r) ("enter", line)
    r = N - 1
    while r >= 0:
        kind, s = state
        if kind == "F":
            events.append(("f", r))
            src = int(f_src[r, s]) if s > 0 else -1
            state = ("F", s) if src < 0 else ("H", src)
            r -= 1
            continue
        if ptr_ins[r, s]:
            events.append(("i", r, int(line_of_state[s])))
            bstate = s
        else:
            events.append(("m", r, int(tok_of_state[s])))
            bstate = s - 1
        q = int(b_orig[r, bstate])
        for d in range(bstate, q, -1):              # deletions q+1 .. bstate
            events.append(("d", int(tok_of_state[d])))
        li = int(line_of_state[q])
        if q == p0[li]:
            events.append(("enter", li))
            src = int(entry_src[r, li])
            state = ("H", src) if src >= 0 else ("F", -src - 1)
        else:
            state = ("H", q)
        r -= 1
    events.reverse()

    deliveries = _deliveries(events, lines, script, script_words, words, t_src, t_toks, sim, weights, params)
    matched = sum(d.coverage * float(line_w[_index(lines, d.line_id)]) for d in deliveries)
    return SceneMatch(deliveries, total, float(matched))


def _index(lines: list[SceneLine], line_id: str) -> int:
    for i, ln in enumerate(lines):
        if ln.line_id == line_id:
            return i
    return 0


@dataclass
class _Raw:
    line: int
    ops: list[tuple]            # ("m", r, k) ("i", r) ("d", k) in order


def _deliveries(events, lines, script: _Tokens, script_words, words, t_src, t_toks, sim, weights,
                params: MatchParams) -> list[Delivery]:
    raws: list[_Raw] = []
    off: list[int] = []                            # off-script take tokens
    cur: _Raw | None = None
    for ev in events:
        if ev[0] == "enter":
            cur = _Raw(ev[1], [])
            raws.append(cur)
        elif ev[0] == "f":
            cur = None
            off.append(ev[1])
        elif ev[0] == "m":
            cur.ops.append(("m", ev[1], ev[2]))
        elif ev[0] == "i":
            cur.ops.append(("i", ev[1]))
        elif ev[0] == "d":
            cur.ops.append(("d", ev[1]))
    n_tok_line = [0] * len(lines)
    first_tok = [None] * len(lines)
    for k, li in enumerate(script.line):
        n_tok_line[li] += 1
        if first_tok[li] is None:
            first_tok[li] = k
    # Words of the line never reached are deletions at the end.
    for raw in raws:
        reached = [op[2] if op[0] == "m" else op[1] for op in raw.ops if op[0] in ("m", "d")]
        last = max(reached) if reached else (first_tok[raw.line] or 0) - 1
        end_tok = (first_tok[raw.line] or 0) + n_tok_line[raw.line]
        raw.ops.extend(("d", k) for k in range(last + 1, end_tok))
    # Off-script words in the same utterance as a delivery's edge: ad-libs before/after the line.
    off_set = set(off)
    take_tok_of = {}
    for raw in raws:
        for op in raw.ops:
            if op[0] in ("m", "i"):
                take_tok_of[op[1]] = raw
    for raw in raws:
        rs = [op[1] for op in raw.ops if op[0] in ("m", "i")]
        if not rs:
            continue
        lo, hi = min(rs), max(rs)
        utt_lo = words[t_src[lo]].utterance
        utt_hi = words[t_src[hi]].utterance
        after = []
        r = hi + 1
        while r in off_set and words[t_src[r]].utterance == utt_hi:
            after.append(r)
            r += 1
        before = []
        r = lo - 1
        while r in off_set and words[t_src[r]].utterance == utt_lo and r not in take_tok_of:
            before.append(r)
            r -= 1
        for r in after + before:
            off_set.discard(r)
            take_tok_of[r] = raw
        raw.ops = [("i", r) for r in reversed(before)] + raw.ops + [("i", r) for r in after]

    out: list[Delivery] = []
    for raw in raws:
        d = _build(raw, lines, script, script_words, words, t_src, t_toks, sim, weights, params)
        if d is not None:
            out.append(d)
    out = _in_runs(out, params)
    # attempts and false starts
    seen: dict[str, int] = {}
    for d in out:
        seen[d.line_id] = seen.get(d.line_id, 0) + 1
        d.attempt = seen[d.line_id]
    for i, d in enumerate(out):
        later = [e for e in out[i + 1:] if e.line_id == d.line_id]
        short = d.reach < params.full or d.coverage < 0.5
        if short and any(e.reach > d.reach for e in later):
            d.status = "false_start"
        elif short:
            d.status = "partial"
    return out


def _stands_alone(d: Delivery, params: MatchParams) -> bool:
    return d.heard >= params.anchor_words and d.coverage >= params.anchor_coverage


def _in_runs(out: list[Delivery], params: MatchParams) -> list[Delivery]:
    """The deliveries that were heard: those that stand on their own, and those inside a run of their
    script neighbours (the line before it delivered just before, or the line after it just after).

    One shared word ("me", "what", "hello") is chance in any conversation; a short line is believed
    only where the scene around it is being played."""
    keep = [_stands_alone(d, params) for d in out]
    changed = True
    while changed:
        changed = False
        for i, d in enumerate(out):
            if keep[i]:
                continue
            before = i > 0 and keep[i - 1] and out[i - 1].line_index == d.line_index - 1 \
                and d.start - out[i - 1].end <= params.run_gap
            after = i + 1 < len(out) and keep[i + 1] and out[i + 1].line_index == d.line_index + 1 \
                and out[i + 1].start - d.end <= params.run_gap
            if before or after:
                keep[i] = changed = True
    return [d for d, k in zip(out, keep) if k]


def _build(raw: _Raw, lines, script: _Tokens, script_words, words, t_src, t_toks, sim, weights,
           params: MatchParams) -> Delivery | None:
    li = raw.line
    ln = lines[li]
    rs = [op[1] for op in raw.ops if op[0] in ("m", "i")]
    if not rs:
        return None
    line_toks = [k for k, l2 in enumerate(script.line) if l2 == li]
    line_w = float(sum(weights[k] for k in line_toks)) or 1.0
    matched_w = 0.0
    deleted_w = 0.0
    n_match = n_ins = n_sub = 0
    content = heard = 0
    changed = _changed_words(raw.ops, script, t_src, sim)
    for op in raw.ops:
        if op[0] == "m":
            s = float(sim[op[1], op[2]])
            if s >= DIFF_EQUAL and (script.src[op[2]], t_src[op[1]]) in changed:
                # The diff shows this word changed (the line's "can" said as "can't" = can + not): it was
                # not delivered as written, so it adds nothing to the coverage or the precision. It was heard,
                # and still counts towards finding the delivery, as before.
                n_sub += 1
                if script.toks[op[2]] not in STOPWORDS:
                    content += 1
                    heard += 1
            elif s >= TOKEN_MATCH:
                matched_w += weights[op[2]] * s
                n_match += 1
                if script.toks[op[2]] not in STOPWORDS:
                    content += 1
                    heard += s >= DIFF_EQUAL
            else:
                n_sub += 1
        elif op[0] == "i":
            n_ins += 1
        else:
            deleted_w += weights[op[1]]
    coverage = matched_w / line_w
    reach = max(0.0, 1.0 - deleted_w / line_w)
    all_stop = all(script.toks[k] in STOPWORDS for k in line_toks)
    if content < params.min_content and not (all_stop and coverage >= 0.6):
        return None
    precision = n_match / max(1, n_match + n_ins + n_sub)
    score = 2 * precision * coverage / (precision + coverage) if precision + coverage else 0.0

    w_lo = t_src[min(rs)]
    w_hi = t_src[max(rs)]
    diff, added, missing, substituted = _diff(raw.ops, script, script_words[li], words, t_src, sim)
    spk = [words[i].speaker for i in range(w_lo, w_hi + 1) if words[i].speaker]
    speaker = max(set(spk), key=spk.count) if spk else None
    start, end = _edges(words, w_lo, w_hi)
    return Delivery(
        line_id=ln.line_id, character=ln.character, first_word=w_lo, last_word=w_hi,
        start=float(start), end=float(end), score=round(float(score), 4), coverage=round(float(min(1.0, coverage)), 4),
        reach=round(float(reach), 4),
        delivered=" ".join(w.text for w in words[w_lo: w_hi + 1]), diff=diff, added=added, missing=missing,
        substituted=substituted, speaker=speaker, heard=heard, line_index=li)


def _changed_words(ops, script: _Tokens, t_src, sim) -> set[tuple[int, int]]:
    """(script word, take word) of the token pairs matched as equal whose script word or take word also has a
    token that is not (:func:`indexer.wdiff.whole_words`, the rule the diff is drawn by)."""
    def equal(op) -> bool:
        return op[0] == "m" and sim[op[1], op[2]] >= DIFF_EQUAL

    dirty_s = {script.src[op[2] if op[0] == "m" else op[1]] for op in ops if op[0] != "i" and not equal(op)}
    dirty_t = {t_src[op[1]] for op in ops if op[0] != "d" and not equal(op)}
    if not dirty_s and not dirty_t:
        return set()
    pairs = ((script.src[op[2]], t_src[op[1]]) for op in ops if equal(op))
    return {(a, b) for a, b in pairs if a in dirty_s or b in dirty_t}


def _max_word_seconds(text: str) -> float:
    """A generous duration for a spoken word (the recogniser stretches edge words over pauses)."""
    return 0.2 + 0.07 * len(text.strip(".,;:!?\"'()-"))


def _edges(words: list[TakeWord], lo: int, hi: int) -> tuple[float, float]:
    """Start and end of a delivery spanning words lo..hi.

    Where the delivery starts (ends) an utterance, the utterance's edge is used: the indexer refined it
    on the sound. Inside an utterance (two lines said without a pause the recogniser noticed), a word
    stretched over the gap is cut to a plausible length.
    """
    first, last = words[lo], words[hi]
    start, end = first.start, last.end
    starts_utt = lo == 0 or words[lo - 1].utterance != first.utterance
    ends_utt = hi == len(words) - 1 or words[hi + 1].utterance != last.utterance
    if starts_utt and first.utt_start is not None:
        start = first.utt_start
    elif not starts_utt:
        start = max(start, first.end - _max_word_seconds(first.text))
    if ends_utt and last.utt_end is not None:
        end = last.utt_end
    elif not ends_utt:
        end = min(end, last.start + _max_word_seconds(last.text))
    return start, max(end, start)


def _diff(ops, script: _Tokens, line_words: list[str], words: list[TakeWord], t_src, sim):
    """wdiff text from the alignment (:mod:`indexer.wdiff`): matched words as said, [-missing-], {+added+},
    [-x-]{+y+}."""
    groups: list[tuple[str, list[int], list[int]]] = []   # (tag, script word idxs, take word idxs)
    # (render counts a word as said only when all of its tokens matched: wdiff.whole_words)
    for op in ops:
        if op[0] == "m":
            tag = "eq" if sim[op[1], op[2]] >= DIFF_EQUAL else "sub"
            s_idx, t_idx = [script.src[op[2]]], [t_src[op[1]]]
        elif op[0] == "i":
            tag, s_idx, t_idx = "ins", [], [t_src[op[1]]]
        else:
            tag, s_idx, t_idx = "del", [script.src[op[1]]], []
        groups.append((tag, s_idx, t_idx))
    from ..wdiff import render

    w = render(groups, line_words, [wd.text for wd in words])
    return w.text, w.added, w.missing, w.substituted


# ------------------------------------------------------------------------------------------ scenes

def scene_vocab(scenes: dict[str, list[SceneLine]]) -> dict[str, set[str]]:
    """Each scene's dialogue as a set of normalised content words (compute once per script)."""
    return {label: {t for ln in lines for t, _ in normalize_words(split_words(ln.text))} - STOPWORDS
            for label, lines in scenes.items()}


def scene_candidates(scenes: dict[str, list[SceneLine]], words: list[TakeWord], top: int = 3,
                     vocab: dict[str, set[str]] | None = None) -> list[str]:
    """Scenes whose dialogue shares the most (rare) words with the take, best first."""
    import math

    take = {t for t, _ in normalize_words([w.text for w in words])} - STOPWORDS
    if not take:
        return []
    vocab = vocab if vocab is not None else scene_vocab(scenes)
    df: dict[str, int] = {}
    for toks in vocab.values():
        for t in toks:
            df[t] = df.get(t, 0) + 1
    n = len(vocab)
    scored = []
    for label, toks in vocab.items():
        common = take & toks
        if not common:
            continue
        s = sum(math.log(1 + n / df[t]) for t in common)
        scored.append((s, label))
    scored.sort(reverse=True)
    return [label for _, label in scored[:top]]
