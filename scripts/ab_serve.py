#!/usr/bin/env python
"""Old against new `dailies serve`, one client, query by query alternately (fair on a shared, loaded machine).

    python scripts/ab_serve.py OLD_CHECKOUT [--index DIR] [--queries 200] [--rounds 2]

OLD_CHECKOUT is a whole old tree (e.g. ``git archive main | tar -x -C /tmp/old``; its scripts find
../shared/eval from there, so link it beside it). Both serve the same index read-only, each in a process of
its own (``dailies serve --read-only``), after one warm-up query each; each of bench_serve.py's queries goes to
the old server then the new (the order swapped every other query). Prints per side the latency p50/p95 and
the server's CPU per query (/proc), and how many responses were identical. Unlike ab_search.py this measures
what only the server does (the JSON response, the heap frozen after the first search).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
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
    import httpx

    from bench_serve import bench_queries, dialogue, pct, tree_cpu

    qs = bench_queries(dialogue(), args.queries)        # bench_serve.py's queries, in its order
    procs, bases = {}, {}
    for name, root in (("old", args.old.resolve()), ("new", ROOT)):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        procs[name] = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--index", str(args.index),
                                        "--port", str(port), "--read-only"], cwd=root,
                                       env={**os.environ, "PYTHONPATH": str(root)})
        bases[name] = f"http://127.0.0.1:{port}"
    try:
        for base in bases.values():
            deadline = time.time() + 120
            while True:
                try:
                    if httpx.get(base + "/api/status", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    if time.time() > deadline:
                        raise SystemExit(f"{base} did not start") from None
                    time.sleep(0.2)
        clients = {n: httpx.Client(base_url=b, timeout=60) for n, b in bases.items()}
        for c in clients.values():
            c.get("/api/search/line", params={"q": "warm up the caches and the embedding"}).raise_for_status()
        ms: dict[str, list[float]] = {n: [] for n in bases}
        cpu0 = {n: tree_cpu(p.pid) for n, p in procs.items()}
        same = 0
        for r in range(args.rounds):
            for k, q in enumerate(qs):
                got = {}
                for n in (("old", "new") if (k + r) % 2 == 0 else ("new", "old")):
                    t = time.perf_counter()
                    resp = clients[n].get("/api/search/line", params={"q": q})
                    ms[n].append((time.perf_counter() - t) * 1000)
                    resp.raise_for_status()
                    got[n] = resp.json()
                same += got["old"] == got["new"]
        cpu = {n: (tree_cpu(p.pid) - cpu0[n]) / len(ms[n]) * 1000 for n, p in procs.items()}
    finally:
        for p in procs.values():
            p.terminate()
            p.wait(30)
    for n in bases:
        print(f"{n}: one client, warm: p50 {statistics.median(ms[n]):.0f} ms, p95 {pct(ms[n], 95):.0f} ms, "
              f"max {max(ms[n]):.0f} ms; server CPU {cpu[n]:.1f} ms per query (n={len(ms[n])})")
    print(f"new/old: p50 {statistics.median(ms['new']) / statistics.median(ms['old']):.2f}, "
          f"p95 {pct(ms['new'], 95) / pct(ms['old'], 95):.2f}, server CPU {cpu['new'] / cpu['old']:.2f}; "
          f"identical responses {same}/{len(ms['new'])}")
    return 0 if same == len(ms["new"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
