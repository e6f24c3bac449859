#!/usr/bin/env python
"""Line search gives the same hits before and after a change: save every hit of a fixed set of queries, then
compare field for field.

    python scripts/check_search_same.py save OUT.json [--index DIR] [--queries 300]
    python scripts/check_search_same.py compare OUT.json [--index DIR]

Queries are bench_serve.py's (script lines as written, some cut to their first half, same seed), then more of
them with scene filters, --no-semantic, a lower --min-match and a span of 3, so the filters' paths are covered
too. Hits are what `GET /api/search/line` returns (views.line_hits, hits_json), compared as JSON: every field,
floats to the last bit.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def queries(n: int) -> list[dict]:
    from bench_serve import dialogue

    corpus = dialogue()
    rng = random.Random(3)                      # bench_serve.py's queries, in its order
    out = []
    for _ in range(min(n, 200)):
        q = rng.choice(corpus)
        if rng.random() < 0.3:
            q = " ".join(q.split()[: max(3, len(q.split()) // 2)])
        out.append({"text": q})
    rng = random.Random(5)
    variants = [{}, {"semantic": False}, {"min_match": 0.3}, {"span": 3}, {"scene": "SCENE"}]
    for k in range(max(0, n - 200)):
        q = rng.choice(corpus)
        if rng.random() < 0.3:
            q = " ".join(q.split()[: max(3, len(q.split()) // 2)])
        v = dict(variants[k % len(variants)])
        if "scene" in v:
            v["scene"] = str(rng.randrange(1, 55))
        out.append({"text": q, **v})
    return out


def run(index: Path, qs: list[dict]) -> tuple[list, float]:
    from indexer import views
    from indexer.store import Index

    out = []
    with Index.open(index) as idx:
        views.line_hits(idx, "warm up the caches and the embedding")
        t = time.perf_counter()
        for q in qs:
            out.append(views.hits_json(views.line_hits(idx, **q)))
        secs = time.perf_counter() - t
    return out, secs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("save", "compare"))
    ap.add_argument("file", type=Path)
    ap.add_argument("--index", type=Path, default=Path("/tmp/bench100k"))
    ap.add_argument("--queries", type=int, default=300)
    args = ap.parse_args()
    if args.mode == "save":
        qs = queries(args.queries)
        hits, secs = run(args.index, qs)
        args.file.write_text(json.dumps({"queries": qs, "hits": hits}))
        print(f"saved the hits of {len(qs)} queries ({sum(map(len, hits))} hits) in {secs:.1f} s: {args.file}")
        return 0
    saved = json.loads(args.file.read_text())
    hits, secs = run(args.index, saved["queries"])
    bad = [k for k, (a, b) in enumerate(zip(saved["hits"], json.loads(json.dumps(hits)))) if a != b]
    for k in bad[:5]:
        a, b = saved["hits"][k], json.loads(json.dumps(hits[k]))
        print(f"query {k} {saved['queries'][k]}: {len(a)} hits saved, {len(b)} now")
        for x, y in zip(a, b):
            if x != y:
                print("  first differing hit:", {f: (x.get(f), y.get(f)) for f in set(x) | set(y) if x.get(f) != y.get(f)})
                break
    print(f"{len(saved['queries']) - len(bad)}/{len(saved['queries'])} queries give the same hits "
          f"({sum(map(len, hits))} hits) in {secs:.1f} s")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
