"""Line search: every take where a line was delivered, best first.

An editor types the line as written; actors paraphrase, ad-lib and skip words, and the recogniser
mishears. Candidates come from three cheap sources (full-text on normalised words and on phonetic
keys, the exact phrase, and nearest neighbours of the query's text embedding in Chroma); each
candidate utterance is also tried joined with its neighbour, since a script line may have been
delivered as two utterances. Every window is then scored by four rankers:

* ``fuzzy``    — word-level alignment of the query to the delivered words (rapidfuzz ratio per word,
                 weighted by how rare the word is, order kept), the share of the line delivered;
* ``phonetic`` — the same alignment on Metaphone keys (names, homophones, recogniser spellings);
* ``exact``    — the exact phrase, or how much of it appears verbatim;
* ``semantic`` — cosine of the text embeddings (paraphrase).

The rankings are fused with reciprocal-rank fusion. A window is a hit when enough of the line was
delivered (``match``), or when it says nearly the same thing in other words (semantic + partial
match). Whisper is never loaded here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import accumulate, chain

import numpy as np

from .errors import UsageError
from .ranking import reciprocal_rank_fusion
from .records import Hit, Shot, Take, shots_spanning
from .store import Index, LineRow
from .textnorm import STOPWORDS, content_tokens, normalize_words, phonetic, split_words

RANKERS = ("fuzzy", "phonetic", "exact", "semantic")
# (longest length, least similarity) for a word pair to count as a match; the last entry covers the rest.
WORD_MATCH = ((3, 1.0), (5, 0.85), (99, 0.72))
KEY_MATCH = ((2, 1.0), (3, 1.0), (99, 0.8))
FTS_CANDIDATES = 200        # best full-text matches (words and phonetic keys) to score
SEMANTIC_CANDIDATES = 60    # nearest neighbours of the query's text embedding to score
EXACT_CANDIDATES = 300      # exact-phrase matches to score (at least 3 x --limit)


@dataclass
class LineQuery:
    text: str
    scene: str | None = None
    take: str | None = None
    speaker: str | None = None
    limit: int = 100
    min_match: float = 0.5
    span: int = 2                 # a hit may join this many adjacent utterances
    semantic: bool = True


@dataclass
class _Window:
    take_id: str
    lines: list[LineRow]
    tokens: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    match: float = 0.0
    bag: float = 0.0            # share of the line's words said in any order
    fused: float = 0.0

    @property
    def first(self) -> int:
        return self.lines[0].idx

    @property
    def last(self) -> int:
        return self.lines[-1].idx

    @property
    def text(self) -> str:
        return " ".join(ln.text for ln in self.lines)


def search_lines(index: Index, query: LineQuery) -> list[Hit]:
    q_words = split_words(query.text)
    q_norm = normalize_words(q_words)
    q_tokens = [t for t, _ in q_norm]
    if not q_tokens:
        raise UsageError("Give some words to search for, e.g. dailies search line \"we have to follow our passions\".")
    q_phon = [phonetic(t) for t in q_tokens]
    takes = take_filter(index, query)
    voice_locals = None
    if query.speaker:
        voice_locals = set(speaker_locals(index, query.speaker))
        spoken_in = {t for t, _ in voice_locals}
        takes = spoken_in if takes is None else takes & spoken_in
    if takes is not None and not takes:
        return []
    take_ids = sorted(takes) if takes is not None else None
    widen = 3 if query.speaker else 1          # other voices' lines take places among the candidates

    # ---------------------------------------------------------------- candidates
    df, total = index.doc_freq(q_tokens)
    terms = full_text_phrases(q_tokens)

    def full_text() -> set[int]:
        # The exact phrase on a second connection, at the same time as the words (each is a third to a half of
        # the full-text time of a long line, where a phrase of common words is costly to follow)
        phrase = _Background(lambda: index.fts(f'norm:"{" ".join(q_tokens)}"', max(EXACT_CANDIDATES, 3 * query.limit),
                                               take_ids, aside=True)) if len(q_tokens) > 1 else None
        found: set[int] = set()
        if terms:
            found.update(r for r, _ in index.fts_any(terms, widen * max(FTS_CANDIDATES, 2 * query.limit), take_ids))
        if phrase is not None:
            found.update(r for r, _ in phrase.result())
        return found

    q_vec = None
    neighbours: list[str] = []
    if query.semantic:
        # SQLite lets go of the GIL while it runs the full-text queries: the query's text embedding and its
        # nearest neighbours in Chroma are found meanwhile, on another core where there is one.
        from . import embed

        fts = _Background(full_text)
        q_vec = embed.embed([query.text])[0]
        neighbours = _semantic_neighbours(index, q_vec, take_ids)
        cand_rowids = fts.result()
    else:
        cand_rowids = full_text()
    lines = index.lines_by_rowid(cand_rowids)
    if neighbours:
        known = {ln.line_id for ln in lines}
        lines.extend(index.lines_by_line_id([lid for lid in neighbours if lid not in known]))
    if voice_locals is not None:
        lines = [ln for ln in lines if (ln.take_id, ln.speaker) in voice_locals]
    if not lines:
        return []

    # Each candidate alone; then, where it holds only part of the line, joined with its neighbours.
    lexicon = _Lexicon(q_tokens, q_phon, _weights(df, total, q_tokens))
    singles = [_Window(ln.take_id, [ln], ln.tokens) for ln in lines]
    # rapidfuzz lets go of the GIL: the single lines' exact-phrase scores are found meanwhile on another core
    q_phrase = " ".join(q_tokens)
    single_texts = [" ".join(w.tokens) for w in singles]
    single_partial = _Background(lambda: _partial_scores(q_phrase, single_texts))
    _lexical(singles, lexicon)
    partial = [w.lines[0] for w in singles if 0.05 <= w.match < 0.95]
    pairs = _joined_windows(index, partial, query.span, voice_locals)
    pair_texts = [" ".join(w.tokens) for w in pairs]
    pair_partial = _Background(lambda: _partial_scores(q_phrase, pair_texts))      # and the joined windows'
    _lexical(pairs, lexicon)
    windows = singles + pairs
    _other_scores(windows, q_tokens, q_vec, single_texts + pair_texts,
                  np.concatenate([single_partial.result(), pair_partial.result()]))

    # ---------------------------------------------------------------- fuse, select, build hits
    _fuse(windows)
    selected = _group_by_take(_select(windows, query.min_match, len(q_tokens)))[: query.limit]
    take_ids_sel = sorted({w.take_id for w in selected})
    take_rows = index.takes_by_id(take_ids_sel) if selected else {}
    shots = index.shots_of(take_rows)
    voices = voice_names(index, take_rows)
    canon = _Canon(q_tokens)
    canon.learn({t for w in selected for ln in w.lines for t in ln.tokens})
    kept = [w for w in selected if w.take_id in take_rows]
    hits = [_hit(w, take_rows[w.take_id], shots[w.take_id], q_norm, q_words, whole=w.match < query.min_match,
                 canon=canon, weights=lexicon.weights)
            for w in kept]
    for h, w in zip(hits, kept):
        _set_speaker(h, w.lines[0], voices)
    # A take that delivered the line only with a word's meaning turned ("can" said as "can't") is not a
    # delivery when that word was what carried it over the bar.
    return [h for h, w in zip(hits, kept) if w.match < query.min_match or h.match >= query.min_match]


def full_text_phrases(q_tokens: list[str]) -> list[str]:
    """The full-text phrases whose lines are candidates: each content word, its stem-like prefix, its sound."""
    content = list(dict.fromkeys(content_tokens(q_tokens)))
    terms = []
    for t in content:
        terms.append(f'norm:"{t}"')
        if len(t) >= 6:
            terms.append(f'norm:"{t[:len(t) - 2]}"*')
    for k in dict.fromkeys(phonetic(t) for t in content):
        if len(k) >= 3:       # one- and two-letter keys ("T", "BT") match half the index: no use as a filter
            terms.append(f'phon:"{k}"')
    return terms


def warm_full_text(index: Index, words: int = 300) -> int:
    """Read and keep the bm25 shares of the phrases of the index's commonest words (the costly ones to read,
    and the ones most searches ask for: :meth:`Index.fts_any`), so that a new server's first searches
    are as quick as its later ones. About 4 s of one core per 100k lines. Returns the number of phrases."""
    phrases = list(dict.fromkeys(chain.from_iterable(full_text_phrases([t]) for t in index.common_words(words))))
    index.fts_any(phrases, 1, fill=True)
    return len(phrases)


# -------------------------------------------------------------------- speakers

def speaker_locals(index: Index, ref: str) -> list[tuple[str, str]]:
    """(take id, local speaker label) of every appearance of a voice named or numbered ``ref``."""
    from .speakers.identity import open_registry

    reg = open_registry(index, readonly=True)
    if reg is None:
        raise UsageError("This index has no speakers yet (index with the speaker models present: "
                         "`dailies models fetch`, then `dailies index --force FOLDER`).")
    return reg.locals_of(reg.require(ref))


def voice_names(index: Index, take_ids) -> dict[tuple[str, str], object]:
    """(take id, local label) -> Voice (id and name, merges followed) for these takes."""
    from .speakers.identity import open_registry

    reg = open_registry(index, readonly=True)
    return reg.mapping(list(take_ids)) if reg is not None else {}


def speaker_of(line: LineRow, voices: dict) -> tuple[str | None, str | None]:
    """(name shown, voice id) of a line's speaker: the voice's name, else its id (V003); merges followed.
    The one place that decides it, for `dailies lines`, search hits and every export; pyannote's
    per-take label (SPEAKER_00) is never shown."""
    voice = voices.get((line.take_id, line.speaker)) if line.speaker else None
    return (voice.display, voice.voice_id) if voice is not None else (None, None)


def named_lines(index: Index, lines: list[LineRow]) -> list[LineRow]:
    """The lines with ``speaker`` set to the name :func:`speaker_of` gives (None when the voice is not
    known) and ``voice_id`` to the voice, for exports."""
    import dataclasses

    voices = voice_names(index, {ln.take_id for ln in lines})
    out = []
    for ln in lines:
        name, vid = speaker_of(ln, voices)
        out.append(dataclasses.replace(ln, speaker=name, voice_id=vid))
    return out


def _set_speaker(hit: Hit, line: LineRow, voices: dict) -> None:
    hit.speaker, hit.voice_id = speaker_of(line, voices)
    hit.speaker_confidence = line.speaker_confidence
    hit.overlap = line.overlap


def _take_rows(index: Index, take_ids) -> dict[str, Take]:
    return index.takes_by_id(take_ids, status="indexed")


def search_speaker(index: Index, ref: str, *, scene: str | None = None, take: str | None = None,
                   limit: int = 1000) -> list[Hit]:
    """Every line a voice speaks, grouped by take (takes by name), in time order."""
    wanted = set(speaker_locals(index, ref))
    takes = take_filter(index, LineQuery(text="", scene=scene, take=take))
    take_rows = _take_rows(index, {t for t, _ in wanted if takes is None or t in takes})
    voices = voice_names(index, take_rows)
    hits: list[Hit] = []
    for take_id, row in sorted(take_rows.items(), key=lambda kv: kv[1].name):
        for ln in index.lines_of_take(take_id):
            if (take_id, ln.speaker) not in wanted:
                continue
            h = row.hit("speaker", ln.start, ln.end, ln.text,
                        ln.speaker_confidence if ln.speaker_confidence is not None else 1.0,
                        shots=list(ln.shots), line_ids=[ln.line_id])
            _set_speaker(h, ln, voices)
            hits.append(h)
    return hits[:limit]


MIN_SHOT_SPEECH = 0.15     # seconds of a voice in a shot for the shot to count as one the voice speaks in


def search_speaker_shots(index: Index, ref: str, *, scene: str | None = None, take: str | None = None,
                         limit: int = 1000) -> list[Hit]:
    """Every shot in which a voice speaks: shot TC in/out and how much of the shot it speaks (``score``
    = share of the shot's duration, ``rankers['seconds']`` = seconds of speech)."""
    from .align import shot_speech

    lines = search_speaker(index, ref, scene=scene, take=take, limit=10**9)
    by_take: dict[str, list[Hit]] = {}
    for h in lines:
        by_take.setdefault(h.take_id, []).append(h)
    take_rows = _take_rows(index, by_take)
    shots_of = index.shots_of(by_take)
    hits: list[Hit] = []
    for take_id, hs in by_take.items():
        row = take_rows[take_id]
        rate, clock = row.rate, row.clock
        shots = shots_of.get(take_id) or []
        if not shots:
            continue                                    # a sound-only file has no shots
        lines = {ln.line_id: ln for ln in index.lines_by_line_id(lid for h in hs for lid in h.line_ids)}
        spans = [(w.start, w.end) for h in hs for lid in h.line_ids for w in lines[lid].words]
        for idx_, secs in sorted(shot_speech(shots, rate, spans).items()):
            if secs < MIN_SHOT_SPEECH:
                continue
            shot = shots[idx_]
            start, end = shot.start(rate), shot.end(rate)
            said = " ".join(h.text for h in hs if idx_ in h.shots)
            h = row.hit("speaker", start, end, said, min(1.0, secs / max(end - start, 1e-6)), shots=[idx_],
                        shot=idx_, speaker=hs[0].speaker, voice_id=hs[0].voice_id, rankers={"seconds": round(secs, 3)})
            h.tc_in, h.tc_out = clock.tc(shot.first_frame), clock.tc(shot.last_frame + 1)     # the shot's frames
            hits.append(h)
    hits.sort(key=lambda h: (take_rows[h.take_id].name, h.start))
    return hits[:limit]


# -------------------------------------------------------------------- candidates

def take_filter(index: Index, query: LineQuery) -> set[str] | None:
    if not query.scene and not query.take:
        return None
    rows = index.takes(status="indexed")
    out = set()
    for r in rows:
        if query.scene and (r["scene"] or "").lower() != query.scene.lower():
            continue
        if query.take and not take_matches(r, query.take):
            continue
        out.add(r["take_id"])
    return out


def _take_number(text: str) -> str:
    """ "T03", "t3", "3" and "03" are take 3."""
    t = text.strip().lower()
    t = t[1:] if t.startswith("t") and t[1:].isdigit() else t
    return t.lstrip("0") or t


def take_matches(row, ref: str) -> bool:
    """Does ``--take REF`` name this take: its take number ("3", "T3"), its clip name, or its take id
    (or an unambiguous prefix of at least 4 characters, as everywhere else). A short number is never
    read as a hash prefix: ``--take 3`` is take 3, not every take whose id starts with "3"."""
    ref = ref.strip()
    if not ref:
        return False
    if row["take"] and _take_number(row["take"]) == _take_number(ref):
        return True
    if ref in (row["name"], row["take_id"]):
        return True
    return len(ref) >= 4 and row["take_id"].startswith(ref.lower())


class _Background:
    """``fn()`` on a thread of its own; ``result()`` waits for it and returns its value or raises its error.

    A thread per call rather than a shared ThreadPoolExecutor: an executor's idle threads do not survive a
    fork (the review room's and the cluster's worker processes), and its queue would make one request's
    search wait behind another's."""

    def __init__(self, fn):
        import threading

        self._value = self._error = None

        def run():
            try:
                self._value = fn()
            except BaseException as exc:      # handed to the caller by result()
                self._error = exc

        self._thread = threading.Thread(target=run, name="dailies-search", daemon=True)
        self._thread.start()

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def _semantic_neighbours(index: Index, q_vec: np.ndarray, take_ids: list[str] | None) -> list[str]:
    where = {"take_id": {"$in": take_ids}} if take_ids else None
    # A retired line vector (a line its take no longer has) is dropped when the ids are looked up in the catalog
    res = index.vectors.nearest("lines", q_vec, SEMANTIC_CANDIDATES, where=where, with_retired=True)
    return list(res["ids"][0]) if res["ids"] else []


def _joined_windows(index: Index, lines: list[LineRow], span: int,
                    voice_locals: set[tuple[str, str]] | None = None) -> list[_Window]:
    """Windows of 2..``span`` adjacent utterances of one speaker around each given line (a line
    delivered in pieces)."""
    if span < 2 or not lines:
        return []
    by_key = {(ln.take_id, ln.idx): ln for ln in lines}
    for ln in index.neighbour_lines(lines, reach=span - 1):
        by_key.setdefault((ln.take_id, ln.idx), ln)
    seen: set[tuple[str, int, int]] = set()
    out: list[_Window] = []
    get = by_key.get
    for ln in lines:
        take_id = ln.take_id
        for size in range(2, span + 1):
            for first in range(ln.idx - size + 1, ln.idx + 1):
                key = (take_id, first, first + size - 1)
                if key in seen:
                    continue
                seen.add(key)
                if size == 2:
                    a, b = get((take_id, first)), get((take_id, first + 1))
                    if a is None or b is None or b.start - a.end > 4.0 or a.speaker != b.speaker:
                        continue      # not there, too far apart to be one delivery, or two speakers
                    if voice_locals is not None and ((take_id, a.speaker) not in voice_locals):
                        continue
                    out.append(_Window(take_id, [a, b], a.tokens + b.tokens))
                    continue
                members = [get((take_id, i)) for i in range(first, first + size)]
                if None in members:
                    continue
                if any(b.start - a.end > 4.0 for a, b in zip(members, members[1:])):
                    continue          # not one delivery: too far apart
                if any(m.speaker != ln.speaker for m in members):
                    continue          # one line is said by one speaker
                if voice_locals is not None and any((m.take_id, m.speaker) not in voice_locals for m in members):
                    continue
                tokens = members[0].tokens + members[1].tokens if size == 2 else \
                    [t for m in members for t in m.tokens]
                out.append(_Window(take_id, members, tokens))
    return out


# -------------------------------------------------------------------- scoring

def _weights(df: dict[str, int], total: int, q_tokens: list[str]) -> np.ndarray:
    """Word weights (``df``: lines holding each word, of ``total``): rare words count more than common ones;
    stopwords count little."""
    max_idf = math.log(1 + (total + 0.5) / 0.5) if total else 1.0
    w = []
    for t in q_tokens:
        d = df.get(t, 0)
        idf = math.log(1 + (total - d + 0.5) / (d + 0.5)) / max_idf if total else 1.0
        base = 0.3 if t in STOPWORDS else 1.0
        w.append(base * (0.6 + 0.4 * max(0.0, min(1.0, idf))))
    return np.asarray(w, dtype=np.float64)


def _similarity(q: list[str], vocab: list[str], thresholds: tuple[tuple[int, float], ...]) -> np.ndarray:
    """Word-to-word similarity (rapidfuzz ratio), zero below a threshold that grows for short words:
    one letter changes "and" into "hand", but "cooperate" into "cooperates" is the same word."""
    from rapidfuzz.fuzz import ratio
    from rapidfuzz.process import cdist

    if not vocab:
        return np.zeros((len(q), 0))
    sim = cdist(q, vocab, scorer=ratio, dtype=np.float32) / 100.0
    shortest = np.minimum(np.array([len(t) for t in q])[:, None], np.array([len(t) for t in vocab])[None, :])
    need = np.full(sim.shape, thresholds[-1][1], dtype=np.float32)
    for max_len, thr in reversed(thresholds[:-1]):
        need[shortest <= max_len] = thr
    sim[sim < need] = 0.0
    return sim


class _Lexicon:
    """One query's word similarities to every distinct delivered token and phonetic key it has met, computed
    once (rapidfuzz's cdist, one call per batch of new words), and each line's tokens and keys as columns of
    them, kept in one flat array per kind, so a line that is in several windows is looked up once and a
    window's columns are gathered by numpy. Column 0 is padding (similarity 0)."""

    def __init__(self, q_tokens: list[str], q_phon: list[str], weights: np.ndarray):
        self.q = (q_tokens, q_phon)
        self.thresholds = (WORD_MATCH, KEY_MATCH)
        self.weights = weights
        self.cols: tuple[dict[str, int], dict[str, int]] = ({}, {})
        self.sim = [np.zeros((len(q_tokens), 1)), np.zeros((len(q_phon), 1))]
        self.flat = [np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)]
        self.where: dict[int, tuple[int, int, int, int]] = {}      # line rowid -> offset, length per kind

    def add(self, lines) -> None:
        new = list({ln.id: ln for ln in lines if ln.id not in self.where}.values())
        if not new:
            return
        words = ([ln.tokens for ln in new], [ln.keys for ln in new])
        for kind in (0, 1):
            cols = self.cols[kind]
            vocab = list(set(chain.from_iterable(words[kind])).difference(cols))   # column order is immaterial
            if vocab:
                base = len(cols) + 1
                cols.update(zip(vocab, range(base, base + len(vocab))))
                self.sim[kind] = np.concatenate(
                    [self.sim[kind], _similarity(self.q[kind], vocab, self.thresholds[kind])], axis=1)
        starts, lens = [], []
        for kind in (0, 1):          # each line's words as columns, one flat array per kind (C-level loops)
            n = list(map(len, words[kind]))
            starts.append(accumulate(n[:-1], initial=len(self.flat[kind])))
            lens.append(n)
            flat = np.fromiter(map(self.cols[kind].__getitem__, chain.from_iterable(words[kind])), dtype=np.intp,
                               count=sum(n))
            self.flat[kind] = np.concatenate([self.flat[kind], flat])
        self.where.update(zip((ln.id for ln in new), zip(starts[0], lens[0], starts[1], lens[1])))

    def segments(self, windows: list[_Window]) -> tuple[np.ndarray, np.ndarray]:
        """Each line of each window, in order: its window, and its (offset, length) per kind (for :meth:`matrix`)."""
        ids = [ln.id for w in windows for ln in w.lines]
        where = np.array(list(map(self.where.__getitem__, ids)), dtype=np.intp).reshape(-1, 4)
        return np.repeat(np.arange(len(windows)), [len(w.lines) for w in windows]), where

    def matrix(self, windows: list[_Window], kind: int,
               segments: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(n_windows, longest) columns of each window's words (0 = padding), and each window's length."""
        win, where = segments if segments is not None else self.segments(windows)
        seg = where
        off, n = where[:, 2 * kind], where[:, 2 * kind + 1]
        lens = np.bincount(win, weights=n, minlength=len(windows)).astype(np.intp)
        # each segment's first place in its window: words of the window's earlier lines
        seg_end = np.cumsum(n)
        win_first_seg = np.searchsorted(win, np.arange(len(windows)))
        before = seg_end - n - (seg_end - n)[win_first_seg][win]
        total = int(seg_end[-1]) if len(seg) else 0
        which = np.repeat(np.arange(len(seg)), n)
        rank = np.arange(total) - np.repeat(seg_end - n, n)
        mat = np.zeros((len(windows), max(int(lens.max(initial=0)), 1)), dtype=np.intp)
        mat[win[which], before[which] + rank] = self.flat[kind][off[which] + rank]
        return mat, lens


def _coverage(sim: np.ndarray, cols: np.ndarray, lens: np.ndarray, weights: np.ndarray,
              bag: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Weighted in-order alignment of the query to each window (vectorised weighted LCS), and with ``bag``
    the weighted share of the query's words found in each window in any order.

    ``sim`` is (query words, vocabulary) with column 0 all zero; ``cols`` is (n_windows, max_len) of its
    columns (0 = padding), ``lens`` each window's length. The alignment is, per window, sum of weight *
    similarity over the best order-preserving matching, divided by the total weight. Windows are scored in
    batches of similar length (padding adds nothing to a window's score, only work), each batch stepping over
    whichever is shorter, the query's words or the batch's positions.

    A delivered word no query word is similar to (a column of ``sim`` all zero) adds nothing either: at such a
    position the alignment's best score only carries over (adding 0.0 and taking the max of equal values is
    exact), so each window keeps only its words that resemble some query word, in order, before the
    alignment: the same scores to the last bit, on a few words a window instead of all of them."""
    total = max(weights.sum(), 1e-9)
    n = len(cols)
    out = np.zeros(n)
    out_bag = np.zeros(n) if bag else None
    keep = sim.any(axis=0)[cols]                            # padding (column 0) is never kept
    lens = keep.sum(axis=1)
    rows, at = np.nonzero(keep)                             # row by row, positions in order
    packed = np.zeros((n, max(int(lens.max(initial=0)), 1)), dtype=cols.dtype)
    packed[rows, np.cumsum(keep, axis=1)[rows, at] - 1] = cols[rows, at]
    cols = packed
    live = np.flatnonzero(lens)                             # a window with no such word scores 0
    order = live[np.argsort(lens[live], kind="stable")]
    n_q = sim.shape[0]
    weighted = None
    for batch in np.array_split(order, max(1, len(order) // 64)):
        if not len(batch):
            continue
        m = max(int(lens[batch].max(initial=0)), 1)
        c = cols[batch, :m]
        g = sim[:, c]                                           # (query words, n, m)
        if bag:
            out_bag[batch] = (weights[:, None] * g.max(axis=2)).sum(axis=0) / total
        if m < n_q:
            # Fewer kept words than query words (a long line): the same recurrence stepped over the window's
            # positions, query words along the vector. Every cell is the max of the same three candidates
            # (above, left, diagonal + weight * similarity), so the scores are the same to the last bit.
            if weighted is None:
                weighted = (sim * weights[:, None]).T             # (vocabulary, query words)
            s = weighted[c]                                       # (n, m, query words)
            dp = np.zeros((len(batch), n_q + 1))
            for j in range(m):
                new = np.empty_like(dp)
                new[:, 0] = dp[:, 0]
                np.maximum(dp[:, 1:], dp[:, :-1] + s[:, j], out=new[:, 1:])   # word j matches query word i, or not
                dp = np.maximum.accumulate(new, axis=1)
            out[batch] = dp[:, -1]
            continue
        dp = np.zeros((len(batch), m + 1))
        for i in range(n_q):
            s = g[i] * weights[i]
            new = np.empty_like(dp)
            new[:, 0] = dp[:, 0]
            np.maximum(dp[:, 1:], dp[:, :-1] + s, out=new[:, 1:])   # match word i at position j, or not
            dp = np.maximum.accumulate(new, axis=1)
        out[batch] = dp[:, -1]
    return out / total, out_bag


def _lexical(windows: list[_Window], lexicon: _Lexicon) -> None:
    """Fuzzy and phonetic in-order coverage of the query by each window; sets ``match``."""
    if not windows:
        return
    lexicon.add(ln for w in windows for ln in w.lines)
    weights = lexicon.weights
    segments = lexicon.segments(windows)
    fuzzy, bag = _coverage(lexicon.sim[0], *lexicon.matrix(windows, 0, segments), weights, bag=True)
    phon, _ = _coverage(lexicon.sim[1], *lexicon.matrix(windows, 1, segments), weights)
    for k, w in enumerate(windows):
        extra = 0.01 * (len(w.lines) - 1)     # a joined window must add something to beat a single line
        f, p = float(fuzzy[k]), float(phon[k])
        w.scores = {"fuzzy": f - extra, "phonetic": p - extra}
        # What share of the line was delivered: the better of spelling and sound, order kept.
        w.match = max(f, 0.95 * p)
        w.bag = float(bag[k])


def _partial_scores(q_phrase: str, texts: list[str]) -> np.ndarray:
    """rapidfuzz's partial_ratio of the query phrase against each window's words joined (0-100)."""
    from rapidfuzz.fuzz import partial_ratio
    from rapidfuzz.process import cdist

    if not texts:
        return np.zeros(0)
    if len(q_phrase) > 64:
        # A phrase over 64 characters takes rapidfuzz's slow path (10-30 ms over ~600 windows): the windows as the
        # rows, so that its threads share them. partial_ratio aligns the shorter string in the longer whichever
        # comes first, so the scores are the same.
        return cdist(texts, [q_phrase], scorer=partial_ratio, dtype=np.float64, workers=-1)[:, 0]
    return cdist([q_phrase], texts, scorer=partial_ratio, dtype=np.float64)[0]


def _other_scores(windows: list[_Window], q_tokens: list[str], q_vec: np.ndarray | None,
                  texts: list[str] | None = None, partial: np.ndarray | None = None) -> None:
    """Exact phrase and semantic rankers (``texts``: the windows' words joined, and ``partial``: their
    :func:`_partial_scores`, when already known)."""
    q_phrase = " ".join(q_tokens)
    sem = _semantic_scores(windows, q_vec) if q_vec is not None and windows else None
    if texts is None:
        texts = [" ".join(w.tokens) for w in windows]
    if partial is None:
        partial = _partial_scores(q_phrase, texts)
    padded = f" {q_phrase} "
    for k, w in enumerate(windows):
        extra = 0.01 * (len(w.lines) - 1)
        if padded in f" {texts[k]} ":
            exact = 1.0
            w.match = max(w.match, 1.0)
        else:
            exact = 0.99 * float(partial[k]) / 100.0
        w.scores["exact"] = exact - extra
        if sem is not None:
            w.scores["semantic"] = float(sem[k]) - extra


def _semantic_scores(windows: list[_Window], q_vec: np.ndarray) -> np.ndarray:
    """Cosine of each window's text embedding with the query's.

    WordLlama embeds a text as the mean of its token vectors, so a window of several lines is the
    word-count-weighted mean of its lines' (unnormalised) vectors: each distinct line text is embedded
    once (takes often transcribe a line identically).
    """
    from . import embed

    lines = [ln for w in windows for ln in w.lines]
    line_texts = [ln.text for ln in lines]
    texts = {t: k for k, t in enumerate(dict.fromkeys(line_texts))}
    raw = embed.embed_raw(list(texts))
    row = np.fromiter(map(texts.__getitem__, line_texts), dtype=np.intp, count=len(lines))
    sizes = np.fromiter(map(len, (w.lines for w in windows)), dtype=np.intp, count=len(windows))
    first = np.cumsum(sizes) - sizes                    # each window's first line in ``lines``
    pooled = np.empty((len(windows), raw.shape[1]), dtype=np.float32)
    n = None
    for size in np.unique(sizes).tolist():      # windows of one size at once, lines added in order
        ks = np.flatnonzero(sizes == size)
        at = first[ks]
        if size == 1:
            pooled[ks] = raw[row[at]]
            continue
        if n is None:
            n = np.fromiter((max(1, len(ln.tokens)) for ln in lines), dtype=np.float32, count=len(lines))
        acc = raw[row[at]] * n[at][:, None]
        for j in range(1, size):
            acc = acc + raw[row[at + j]] * n[at + j][:, None]
        pooled[ks] = acc
    norms = np.linalg.norm(pooled, axis=1)
    dots = pooled @ np.asarray(q_vec, dtype=np.float32)
    return np.where(norms > 0, dots / np.maximum(norms, 1e-12), 0.0).astype(np.float32)


def _fuse(windows: list[_Window]) -> None:
    """Reciprocal-rank fusion of the rankers any window has; ``fused`` is 1.0 for a window first for
    every ranker. A window a ranker did not score counts as -1.0 for it (last)."""
    present = [r for r in RANKERS if any(r in w.scores for w in windows)]
    fused = reciprocal_rank_fusion([[w.scores.get(r, -1.0) for w in windows] for r in present])
    for w, f in zip(windows, fused or [0.0] * len(windows)):
        w.fused = f


def _select(windows: list[_Window], min_match: float, q_len: int) -> list[_Window]:
    """Hits: enough of the line delivered (or the same meaning), best first, no two overlapping.

    Deliveries of the line's words come first; a paraphrase only fills a place no delivery overlaps.
    """
    def lexical(w: _Window) -> bool:
        return w.match >= min_match

    def paraphrase(w: _Window) -> bool:
        # Fewer of the line's words, the same meaning, about as many words (a false start is a
        # fragment, not a paraphrase). Measured on the fixture shoot's paraphrases
        # (scripts/eval_search.py): deliveries score semantic 0.43-0.92 with match 0.28-0.72,
        # unrelated lines at most semantic 0.22 / match 0.22.
        # The line's own words in another order are not a paraphrase: the text embedding is blind to
        # word order, so it cannot vouch for them, and they were not delivered as the line (issue 20:
        # a query in the wrong order came back as a 41 % span with --min-match 0.5).
        sem = w.scores.get("semantic")
        return (sem is not None and sem >= 0.9 * min_match and w.match >= 0.5 * min_match
                and (sem + w.match) / 2 >= 0.8 * min_match and len(w.tokens) >= 0.6 * q_len
                and w.bag < min_match)

    ranked = sorted(((lexical(w), w) for w in windows if lexical(w) or paraphrase(w)),
                    key=lambda p: (p[0], p[1].fused, p[1].match), reverse=True)
    kept: list[_Window] = []
    taken: dict[str, list[tuple[int, int]]] = {}
    for _, w in ranked:
        spans = taken.setdefault(w.take_id, [])
        if any(not (w.last < a or w.first > b) for a, b in spans):
            continue
        spans.append((w.first, w.last))
        kept.append(w)
    return kept


# -------------------------------------------------------------------- hits

def _hit(w: _Window, take: Take, take_shots: list[Shot], q_norm: list[tuple[str, int]], q_words: list[str],
         whole: bool = False, canon: _Canon | None = None, weights: np.ndarray | None = None) -> Hit:
    """The hit of a window: the delivered span (``whole``: every word, for a paraphrase) and its diff.
    ``weights``: the query tokens' (see :func:`_weights`), to take the ones not said as written out of the
    match."""
    words = [wd for ln in w.lines for wd in ln.words]
    d_norm = normalize_words([wd.text for wd in words])
    first_word, last_word, diff, unsaid = _trace(q_norm, q_words, d_norm, [wd.text for wd in words], whole, canon)
    match = min(1.0, w.match)
    if unsaid and weights is not None and not whole:
        match = max(0.0, match - float(weights[unsaid].sum()) / max(float(weights.sum()), 1e-9))
    start = words[first_word].start if words else w.lines[0].start
    end = words[last_word].end if words else w.lines[-1].end
    # The utterance's refined edges are more exact than Whisper's word edges: use them when the match
    # reaches the utterance's first or last word, unless that edge falls on the other side of the span
    # (a refined edge can cut into a lone word Whisper placed past it: the fuzzer found "Leo." ending
    # before it began).
    if first_word == 0 and w.lines[0].start < end:
        start = w.lines[0].start
    if last_word == len(words) - 1 and w.lines[-1].end > start:
        end = w.lines[-1].end
    if end <= start:        # a word with no length of its own (an index written before align clamped words)
        start, end = w.lines[0].start, w.lines[-1].end
    shots = shots_spanning(take_shots, start, end, take.rate) if take_shots else \
        sorted({s for ln in w.lines for s in ln.shots})
    delivered = " ".join(wd.text for wd in words[first_word: last_word + 1])
    return take.hit(
        "line", start, end, delivered, w.fused, shots=shots, speaker=w.lines[0].speaker,
        voice_id=w.lines[0].voice_id, match=match, diff=diff, line_ids=[ln.line_id for ln in w.lines],
        rankers=dict(w.scores), channel=_channel(words[first_word: last_word + 1]),
    )


def _channel(words) -> int | None:
    """The iso channel (1-based) the words were heard on, when all come from one."""
    from .records import line_channel

    c = line_channel(list(words))
    return None if c is None else c + 1


class _Canon:
    """Which query token a delivered token stands for in the diff's alignment (recogniser spellings,
    plurals): the first of the query's tokens of more than two letters with a ratio of at least 80, for
    delivered tokens of more than two letters that are not themselves in the query. Learnt for many tokens
    at once (one cdist call for all of a search's hits)."""

    def __init__(self, q: list[str]):
        self.q = q
        self.q_set = set(q)
        self.map: dict[str, str | None] = {}

    def learn(self, tokens) -> None:
        from rapidfuzz.fuzz import ratio
        from rapidfuzz.process import cdist

        new = [t for t in tokens if t not in self.map]
        ask = [t for t in new if len(t) > 2 and t not in self.q_set]
        self.map.update(dict.fromkeys(new))
        if not ask:
            return
        scores = cdist(ask, self.q, scorer=ratio, score_cutoff=80, dtype=np.float64)
        best = scores.argmax(axis=1)          # the first best, as extractOne
        for t, j, row in zip(ask, best, scores):
            if row[j] >= 80 and len(self.q[j]) > 2:
                self.map[t] = self.q[j]

    def __call__(self, tokens: list[str]) -> list[str]:
        self.learn(set(tokens))
        return [self.map[t] or t for t in tokens]


def _trace(q_norm: list[tuple[str, int]], q_words: list[str], d_norm: list[tuple[str, int]],
           d_words: list[str], whole: bool = False,
           canon: _Canon | None = None) -> tuple[int, int, str, list[int]]:
    """Align query and delivered tokens; return the delivered word span, its word diff
    (:mod:`indexer.wdiff`), built from the words of that span only, so the diff's said words are the
    hit's text, and the query tokens the alignment matched whose word the diff shows as changed.
    ``whole``: the span is every word (a paraphrase is the whole window said otherwise).
    """
    from rapidfuzz.distance import Levenshtein

    from .wdiff import render

    q = [t for t, _ in q_norm]
    d = [t for t, _ in d_norm]
    if not d:
        return 0, 0, "", []
    # Fuzzy-equal tokens count as equal for the alignment (recogniser spellings, plurals), but a
    # delivered word that is itself in the line keeps its own identity.
    d_c = (canon or _Canon(q))(d)
    if whole:
        first_word, last_word = 0, len(d_words) - 1
    else:
        ops = Levenshtein.opcodes(q, d_c)
        matched = [j for op in ops if op.tag == "equal" for j in range(op.dest_start, op.dest_end)]
        if not matched:
            matched = [j for op in ops if op.tag == "replace" for j in range(op.dest_start, op.dest_end)] or [0]
        first_word, last_word = d_norm[min(matched)][1], d_norm[max(matched)][1]
    span = [k for k, (_, i) in enumerate(d_norm) if first_word <= i <= last_word]
    tags = {"equal": "eq", "insert": "ins", "delete": "del", "replace": "sub"}
    ops = Levenshtein.opcodes(q, [d_c[k] for k in span])
    groups = [(tags[op.tag], [q_norm[k][1] for k in range(op.src_start, op.src_end)],
               [d_norm[span[k]][1] for k in range(op.dest_start, op.dest_end)])
              for op in ops]
    # Query tokens aligned as equal whose word was not said as written (wdiff.whole_words: "can" against the
    # take's "can't" = can not): the diff shows them changed, so the hit's match must not count them.
    dirty_q = {i for (tag, s_idx, _) in groups if tag != "eq" for i in s_idx}
    dirty_d = {j for (tag, _, t_idx) in groups if tag != "eq" for j in t_idx}
    unsaid = [op.src_start + p for op, (tag, s_idx, t_idx) in zip(ops, groups) if tag == "eq"
              for p, (i, j) in enumerate(zip(s_idx, t_idx)) if i in dirty_q or j in dirty_d]
    return first_word, last_word, render(groups, q_words, d_words).text, unsaid


def _group_by_take(windows: list[_Window]) -> list[_Window]:
    """Takes ordered by their best hit; within a take, best first."""
    best: dict[str, float] = {}
    for w in windows:
        best[w.take_id] = max(best.get(w.take_id, 0.0), w.fused)
    return sorted(windows, key=lambda w: (-best[w.take_id], w.take_id, -w.fused, w.lines[0].start))
