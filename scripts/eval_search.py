#!/usr/bin/env python
"""What each part of line search adds: recall, precision and MRR with and without the semantic ranker.

    uv run python scripts/eval_search.py [--index DIR]

Indexes the fixture shoot (or uses --index), then runs labelled queries: every script line as written,
and hand-written variations an editor might type from memory — partial lines, paraphrases, synonyms,
misspellings. A query's relevant takes are those whose deliveries the manifest lists for that script line.
Reports, for the full ranking and with the semantic (WordLlama) ranker switched off:
  recall    share of relevant takes returned,
  precision share of returned takes that are relevant,
  MRR       mean reciprocal rank of the first relevant take.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path)
    args = ap.parse_args()

    from indexer.config import IndexSettings
    from indexer.pipeline import Indexer
    from indexer.search import LineQuery, search_lines
    from indexer.store import Index

    manifest = json.loads((ROOT / "fixtures" / "manifest.json").read_text())
    relevant: dict[int, set[str]] = {}
    for t in manifest["takes"]:
        for d in t["deliveries"]:
            if d["kind"] != "false_start":
                relevant.setdefault(d["script_line"], set()).add(t["name"])
    queries = [(sl["n"], sl["text"], "as written") for sl in manifest["script_lines"]] + VARIATIONS

    with tempfile.TemporaryDirectory() as tmp:
        path = args.index
        if path is None:
            path = Path(tmp) / "idx"
            with Index.open_writer(path) as idx:
                Indexer(idx, IndexSettings()).run([ROOT / "fixtures" / "shoot"])
        with Index.open(path) as idx:
            rows = []
            for semantic in (True, False):
                per_kind: dict[str, list[tuple[float, float, float]]] = {}
                for n, q, kind in queries:
                    hits = search_lines(idx, LineQuery(text=q, semantic=semantic))
                    takes = []
                    for h in hits:
                        if h.name not in takes:
                            takes.append(h.name)
                    rel = relevant[n]
                    recall = len(rel & set(takes)) / len(rel)
                    precision = len(rel & set(takes)) / len(takes) if takes else 1.0
                    rr = next((1 / (i + 1) for i, t in enumerate(takes) if t in rel), 0.0)
                    per_kind.setdefault(kind.split("+")[0], []).append((recall, precision, rr))
                    per_kind.setdefault("ALL", []).append((recall, precision, rr))
                rows.append((semantic, per_kind))

    print(f"{len(queries)} queries on the fixture shoot ({len(relevant)} script lines)")
    print(f"{'queries':<12}{'n':>4}  {'recall':>7}{'prec.':>7}{'MRR':>6}   |  without semantic ranker")
    with_sem, without = rows[0][1], rows[1][1]
    for kind in sorted(with_sem, key=lambda k: (k == "ALL", k)):
        a, b = with_sem[kind], without[kind]
        fmt = lambda v: "".join(f"{sum(x[i] for x in v) / len(v):>7.2f}" for i in range(3))  # noqa: E731
        print(f"{kind:<12}{len(a):>4}  {fmt(a)}   |  {fmt(b)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
