#!/usr/bin/env python
"""Old against new line search in one process, query by query alternately (fair on a shared, loaded machine).

    python scripts/ab_search.py OLD_PACKAGE_DIR [--index DIR] [--queries 200] [--rounds 2]

OLD_PACKAGE_DIR holds the old ``indexer`` package under another name, ``oldidx`` (e.g. a folder with a link
``oldidx -> /path/to/old/checkout/indexer``). Each query runs on the old code then the new (the order swapped
every other query), each on its own open index; CPU time (this process) and wall time are summed per side.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", type=Path)
    ap.add_argument("--index", type=Path, default=Path("/tmp/bench100k"))
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    from check_search_same import queries

    sys.path.insert(0, str(args.old))
    # Both sides share one store (indexer/store/ is unchanged; two copies of it open two Chroma clients, which
    # crashes in Chroma's bindings) and so one records module: the hits' JSON is built by the new code on both.
    import indexer.store
    for name, mod in list(sys.modules.items()):
        if name.startswith("indexer.store") or name == "indexer.records":
            sys.modules["oldidx" + name[len("indexer"):]] = mod
    sides = {}
    for name, pkg, index in (("old", "oldidx", args.index), ("new", "indexer", args.index)):
        views = importlib.import_module(f"{pkg}.views")
        store = importlib.import_module(f"{pkg}.store")
        sides[name] = (views, store.Index.open(index))
    qs = queries(args.queries)
    for views, idx in sides.values():
        for q in qs:
            views.hits_json(views.line_hits(idx, **q))
    cpu = {k: [] for k in sides}
    wall = {k: [] for k in sides}
    for r in range(args.rounds):
        for k, q in enumerate(qs):
            order = ("old", "new") if (k + r) % 2 == 0 else ("new", "old")
            for name in order:
                views, idx = sides[name]
                t, c = time.perf_counter(), time.process_time()
                views.hits_json(views.line_hits(idx, **q))
                cpu[name].append(time.process_time() - c)
                wall[name].append(time.perf_counter() - t)

    def pct(xs, p):
        xs = sorted(xs)
        return 1000 * xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

    for name in sides:
        c, w = cpu[name], wall[name]
        print(f"{name}: CPU per query mean {1000 * sum(c) / len(c):.1f} ms, p50 {pct(c, 50):.1f}, p95 {pct(c, 95):.1f}; "
              f"wall p50 {pct(w, 50):.1f} ms, p95 {pct(w, 95):.1f} ms (n={len(c)})")
    print(f"new/old: CPU mean {sum(cpu['new']) / sum(cpu['old']):.2f}, CPU p95 {pct(cpu['new'], 95) / pct(cpu['old'], 95):.2f}, "
          f"wall p95 {pct(wall['new'], 95) / pct(wall['old'], 95):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
