#!/usr/bin/env python
"""Where a warm line search spends its time, stage by stage, in this process (no HTTP).

    python scripts/profile_search.py [--index DIR] [--queries 200] [--cprofile N]

Runs bench_serve.py's queries (views.line_hits, as `GET /api/search/line`) once to warm up, then again timing
each stage of indexer.search.search_lines (wall and CPU time, per query); --cprofile N prints the N functions
with the most own time.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STAGES = {
    "search": ["take_filter", "_semantic_neighbours", "_lexical", "_joined_windows", "_other_scores", "_fuse",
               "_select", "_group_by_take", "_hit", "voice_names", "_weights"],
    "store": ["fts", "fts_any", "doc_freq", "lines_by_rowid", "lines_by_line_id", "neighbour_lines", "takes_by_id", "shots_of"],
    "embed": ["embed"],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, default=Path("/tmp/bench100k"))
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--cprofile", type=int, default=0)
    args = ap.parse_args()

    from check_search_same import queries

    from indexer import embed, search, views
    from indexer.store import Index, catalog

    qs = queries(args.queries)
    wall: dict[str, float] = defaultdict(float)
    cpu: dict[str, float] = defaultdict(float)
    depth = [0]

    def timed(name, fn):
        @functools.wraps(fn)
        def wrapper(*a, **kw):
            if depth[0]:
                return fn(*a, **kw)             # only the outermost timed stage counts
            depth[0] += 1
            t, c = time.perf_counter(), time.process_time()
            try:
                return fn(*a, **kw)
            finally:
                wall[name] += time.perf_counter() - t
                cpu[name] += time.process_time() - c
                depth[0] -= 1
        return wrapper

    for name in STAGES["search"]:
        setattr(search, name, timed(name, getattr(search, name)))
    for name in STAGES["store"]:
        setattr(catalog.Index, name, timed(name, getattr(catalog.Index, name)))
    search_embed = embed.embed
    embed.embed = timed("embed (query)", search_embed)
    orig = views.line_hits

    with Index.open(args.index) as idx:
        for q in qs:
            orig(idx, **q)
        wall.clear(), cpu.clear()
        t, c = time.perf_counter(), time.process_time()
        if args.cprofile:
            import cProfile
            import pstats

            pr = cProfile.Profile()
            pr.enable()
        per_query = []
        for q in qs:
            before, t0 = dict(wall), time.perf_counter()
            orig(idx, **q)
            per_query.append((time.perf_counter() - t0, {k: wall[k] - before.get(k, 0.0) for k in wall}, q))
        if args.cprofile:
            pr.disable()
        total_w, total_c = time.perf_counter() - t, time.process_time() - c
    n = len(qs)
    print(f"{n} queries on {args.index}: {1000 * total_w / n:.1f} ms wall, {1000 * total_c / n:.1f} ms CPU per query")
    print(f"{'stage':24s} {'wall ms/q':>10s} {'cpu ms/q':>10s}")
    for name in sorted(wall, key=wall.get, reverse=True):
        print(f"{name:24s} {1000 * wall[name] / n:10.2f} {1000 * cpu[name] / n:10.2f}")
    rest_w, rest_c = total_w - sum(wall.values()), total_c - sum(cpu.values())
    print(f"{'(rest of search_lines)':24s} {1000 * rest_w / n:10.2f} {1000 * rest_c / n:10.2f}")
    ms = sorted(1000 * t for t, _, _ in per_query)
    print(f"per query: p50 {ms[len(ms) // 2]:.1f} ms, p95 {ms[int(0.95 * (len(ms) - 1))]:.1f} ms, max {ms[-1]:.1f} ms")
    slow = sorted(per_query, key=lambda p: p[0], reverse=True)[: max(1, len(per_query) // 10)]
    print(f"the slowest {len(slow)} queries ({sum(len(q['text'].split()) for _, _, q in slow) / len(slow):.0f} words "
          f"on average, against {sum(len(q['text'].split()) for _, _, q in per_query) / n:.0f}), wall ms per query:")
    agg: dict[str, float] = defaultdict(float)
    for t, st, _ in slow:
        for k, v in st.items():
            agg[k] += v
        agg["(total)"] += t
    for name in sorted(agg, key=agg.get, reverse=True):
        print(f"  {name:22s} {1000 * agg[name] / len(slow):8.2f}")
    if args.cprofile:
        pstats.Stats(pr).sort_stats("tottime").print_stats(args.cprofile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
