#!/usr/bin/env python
"""The review room's search API under load, on a synthetic index of 100k distinct lines.

    uv run python scripts/bench_serve.py [--lines 100000] [--keep DIR] [--queries 200] [--clients 20]

1. Builds an index of --lines distinct lines from every dialogue line of the screenplays in
   ../shared/eval/script (Fountain and Final Draft), made ASR-like: each synthetic utterance joins one or two
   sentences of different speeches and suffers word errors (substitutions by a similar-sounding or similar
   word of the screenplays' vocabulary, deletions, insertions, split and merged words; about 12 % WER).
   Lines are written through the store (`Index.commit_take`) with their text-embedding vectors, 200 per take.
2. Serves it with uvicorn in this process, as `dailies serve` does (it first reads the commonest words'
   full-text shares on a thread: the time is printed), and times `GET /api/search/line` sequentially (warm):
   p50/p95/max, goal p95 < 100 ms. Each query is new to the server (a few speeches come up twice). Then the
   review room's downloads of 50 of those searches' hits (`/api/export`: FCPXML, EDL, Avid markers).
3. The same with --clients concurrent clients while another process writes new takes into the index (the one
   writer, from before the first query to after the last answer), goal p95 < 300 ms and no error. Every commit
   of the writer changes the full-text index's totals, so the server reads the shares its searches need again
   after each. Each client searches again as soon as it has its answer, so this measures the server's
   throughput: the waits it implies are printed. With --pause S, the clients then search again pausing S seconds
   on average between searches, as a team does.

Queries are script lines as written (the index holds them only corrupted), some cut to their first half.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT.parent / "shared" / "eval" / "script"
sys.path.insert(0, str(ROOT))

LINES_PER_TAKE = 200
RATE = Fraction(24000, 1001)


def dialogue() -> list[str]:
    from indexer.script import load_file

    out: dict[str, None] = {}
    for p in sorted(SCRIPTS.rglob("*")):
        if p.suffix.lower() in (".fountain", ".fdx"):
            try:
                for ln in load_file(p).lines:
                    t = " ".join(ln.text.split())
                    if len(t.split()) >= 2:
                        out[t] = None
            except Exception as exc:  # a screenplay the parser refuses: the others suffice
                print(f"skipped {p.name}: {exc}", file=sys.stderr)
    if not out:
        raise SystemExit(f"No screenplays under {SCRIPTS}.")
    return list(out)


def sentences(text: str) -> list[str]:
    parts = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]
    return parts or [text]


class Corrupter:
    """ASR-like word errors drawn from the screenplays' own vocabulary."""

    def __init__(self, corpus: list[str], rng: random.Random):
        from indexer.textnorm import phonetic

        self.rng = rng
        vocab = sorted({w.lower().strip(".,!?;:\"'()") for t in corpus for w in t.split()} - {""})
        self.by_key: dict[str, list[str]] = {}
        for w in vocab:
            self.by_key.setdefault(phonetic(w), []).append(w)
        self.vocab = vocab
        self.phonetic = phonetic

    def word(self, w: str) -> str:
        core = w.lower().strip(".,!?;:\"'()")
        same = [x for x in self.by_key.get(self.phonetic(core), []) if x != core] if core else []
        if same:
            return self.rng.choice(same)
        if len(core) > 4:                               # a near spelling
            i = self.rng.randrange(1, len(core) - 1)
            return core[:i] + self.rng.choice("aeiourstln") + core[i + 1:]
        return self.rng.choice(self.vocab)

    def __call__(self, text: str, wer: float = 0.12) -> str:
        out: list[str] = []
        words = text.split()
        i = 0
        while i < len(words):
            w, r = words[i], self.rng.random()
            if r < wer * 0.5:
                out.append(self.word(w))
            elif r < wer * 0.7:
                pass                                    # deleted
            elif r < wer * 0.85:
                out.extend([w, self.rng.choice(self.vocab)])   # inserted
            elif r < wer and i + 1 < len(words):
                out.append((w + words[i + 1]).lower().strip(".,!?"))  # merged
                i += 1
            else:
                out.append(w)
            i += 1
        return " ".join(out) or text


def synthetic_lines(n: int, seed: int = 7) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    corpus = dialogue()
    sents = [sentences(t) for t in corpus]
    flat = [s for ss in sents for s in ss]
    corrupt = Corrupter(corpus, rng)
    seen: set[str] = set()
    out: list[str] = []
    tries = 0
    while len(out) < n and tries < n * 20:
        tries += 1
        a = rng.choice(flat)
        text = a if rng.random() < 0.4 else f"{a} {rng.choice(flat)}"
        t = corrupt(text)
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out, corpus


def build_index(path: Path, lines: list[str], start_take: int = 0, stop: Path | None = None) -> float:
    """Write ``lines`` as takes of LINES_PER_TAKE lines. ``stop``: the writer of step 3, which says "writing" on
    stdout after its first commit and ends after the commit during which this file appears."""
    import numpy as np

    from indexer import embed
    from indexer.records import Line, MediaInfo, Shot, Word
    from indexer.store import Index

    t0 = time.time()
    written = 0
    with Index.open_writer(path) as idx:
        for k in range(0, len(lines), LINES_PER_TAKE):
            if stop is not None and k:
                if k == LINES_PER_TAKE:
                    print("writing", flush=True)
                if stop.exists():
                    break
            chunk = lines[k:k + LINES_PER_TAKE]
            n = start_take + k // LINES_PER_TAKE
            take_id = f"syn{n:09d}"
            t, recs = 0.0, []
            for j, text in enumerate(chunk):
                ws = text.split()
                words = [Word(t + 0.3 * i, t + 0.3 * i + 0.25, w, 0.9) for i, w in enumerate(ws)]
                recs.append(Line(j, words[0].start, words[-1].end, words, shots=[0]))
                t = words[-1].end + 0.5
            frames = int(t * RATE) + 1
            info = MediaInfo(path=f"/synthetic/{take_id}.mov", name=f"{n // 10 + 1}_T{n % 10 + 1}_CamA", size=0,
                             mtime_ns=0, container="mov,mp4", duration=t, rate=RATE, start_tc="01:00:00:00",
                             tc_source="none", drop_frame=False, has_video=True, frames=frames, width=320,
                             height=180, video_codec="h264", scene=str(n // 10 + 1), take=str(n % 10 + 1),
                             camera="A")
            idx.upsert_take(take_id, take_id, info, status="pending")
            vecs = np.asarray(embed.embed(chunk), dtype=np.float32)
            idx.commit_take(take_id, info, [Shot(0, 0, frames - 1)], recs, vecs, models={"synthetic": True},
                            seconds=0.0)
            written += 1
    if stop is not None:
        print(f"wrote {written} takes of {LINES_PER_TAKE} lines", flush=True)
    return time.time() - t0


def serve_processes(index: Path, workers: int):
    """`dailies serve --workers N` in processes of its own (the clients' threads then do not share its GIL)."""
    import httpx

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--index", str(index), "--port", str(port),
                             "--workers", str(workers), "--read-only"], cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(base + "/api/status", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        raise SystemExit("dailies serve did not start")

    class Stop:
        pid = proc.pid

        @property
        def should_exit(self):
            return proc.poll() is not None

        @should_exit.setter
        def should_exit(self, value):
            if value:
                proc.terminate()
                proc.wait(30)
    return Stop(), base


def serve(index: Path):
    import uvicorn

    from indexer.server import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    t = time.perf_counter()
    app = create_app(index, proxies=False, warm=True)        # as `dailies serve`
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    # The server reads the commonest words' full-text shares on a thread at start; "warm" is after that.
    app.state.pool.warmed.wait(300)
    print(f"server started and warmed up (the commonest words' full-text shares read) in "
          f"{time.perf_counter() - t:.1f} s")
    return server, f"http://127.0.0.1:{sock.getsockname()[1]}"


def tree_cpu(pid: int | None) -> float | None:
    """CPU seconds (user + system) used so far by a process and all its descendants (Linux /proc): what the
    server spent, whatever else runs on the machine (wall-clock latencies on a shared machine are not)."""
    import os

    if pid is None or not os.path.isdir("/proc"):
        return None
    stats = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(d)] = (int(fields[1]), int(fields[11]) + int(fields[12]))     # ppid, utime + stime
    tree, todo = set(), [pid]
    while todo:
        p = todo.pop()
        tree.add(p)
        todo.extend(c for c, (pp, _) in stats.items() if pp == p and c not in tree)
    return sum(stats[p][1] for p in tree if p in stats) / os.sysconf("SC_CLK_TCK")


def cpu_note(before: float | None, after: float | None, n: int) -> str:
    return "" if before is None or after is None else f"; server CPU {1000 * (after - before) / n:.0f} ms per query"


def bench_queries(corpus: list[str], n: int, seed: int = 3) -> list[str]:
    """The bench's queries: screenplay speeches, 30 % of them cut to their first half (at least 3 words)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        q = rng.choice(corpus)
        if rng.random() < 0.3:
            q = " ".join(q.split()[: max(3, len(q.split()) // 2)])
        out.append(q)
    return out


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def summary(ms: list[float]) -> str:
    return f"p50 {statistics.median(ms):.0f} ms, p95 {pct(ms, 95):.0f} ms, max {max(ms):.0f} ms (n={len(ms)})"


def time_to_first_frame(index: Path, query: str, chromium: str, workers: int | None = None) -> None:
    """Click each video hit of a query in the search page (Chromium, headless) and time until the first frame
    of the line's pre-roll is presented (requestVideoFrameCallback): cold (the take's first click) and warm."""
    from playwright.sync_api import sync_playwright

    flags = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]
    server, base = serve_processes(index, workers) if workers else serve(index)
    if workers:
        print(f"served by `dailies serve --workers {workers}` in its own processes")
    cold, warm = [], []
    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        ctx = p.chromium.launch_persistent_context(profile, executable_path=chromium, headless=True, args=flags)
        page = ctx.new_page()
        page.goto(f"{base}/?q={query}")
        page.wait_for_selector(".hit")
        hits = page.request.get(f"{base}/api/search/line", params={"q": query}).json()
        takes = {t["take_id"]: t for t in page.request.get(f"{base}/api/takes").json()}
        video = [i for i, h in enumerate(hits) if takes[h["take_id"]]["media_kind"] == "video"]
        for rnd in range(3):
            for i in video:
                ms = page.evaluate("""async ([i, target]) => {
                    const v = document.getElementById('video');
                    const t0 = performance.now();
                    document.querySelectorAll('.hit')[i].click();
                    await new Promise(res => {
                      const f = () => v.requestVideoFrameCallback((now, m) =>
                        Math.abs(m.mediaTime - target) < 0.25 ? res() : f());
                      f();
                    });
                    return performance.now() - t0; }""", [i, max(0.0, hits[i]["start"] - 1.0)])
                (cold if rnd == 0 else warm).append(ms)
                page.evaluate("document.getElementById('video').pause()")
        ctx.close()
    server.should_exit = True
    print(f"time to first frame after clicking a hit ({len(video)} video hits of {query!r}): "
          f"first click of a take {summary(cold)}; again {summary(warm)} (goal < 300 ms)")


def proxy_cost(index: Path) -> None:
    """A ProRes copy of each video take of the fixture shoot is proxied (PyAV, H.264 540p); its time is set
    against the take's index time recorded in the catalog."""
    import av

    from indexer.server.media import make_proxy
    from indexer.store import Index

    with Index.open(index) as idx:
        rows = [r for r in idx.takes("indexed") if r["has_video"] and r["index_seconds"]]
    total_p = total_i = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for r in rows:
            src = Path(tmp) / f"{r['name']}_prores.mov"
            with av.open(r["path"]) as inp, av.open(str(src), "w") as out:
                vin = inp.streams.video[0]
                vout = out.add_stream("prores_ks", rate=vin.average_rate)
                vout.width, vout.height, vout.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv422p10le"
                tb = Fraction(1) / vin.average_rate
                for n, f in enumerate(inp.decode(vin)):
                    f = f.reformat(format="yuv422p10le")
                    f.pts, f.time_base = n, tb
                    for pk in vout.encode(f):
                        out.mux(pk)
                for pk in vout.encode(None):
                    out.mux(pk)
            t = time.perf_counter()
            make_proxy(src, Path(tmp) / f"{r['name']}.mp4", Fraction(r["rate"]))
            secs = time.perf_counter() - t
            total_p += secs
            total_i += r["index_seconds"]
            print(f"  {r['name']}: proxy {secs:.2f} s, indexed in {r['index_seconds']:.1f} s")
    print(f"proxy cost: {total_p:.1f} s for {len(rows)} ProRes takes = {100 * total_p / total_i:.1f} % of their "
          f"index time ({total_i:.0f} s)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--keep", type=Path, help="Build (or reuse) the synthetic index here.")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--pause", type=float, default=0.0, metavar="SECONDS",
                    help="Then the same clients again, each pausing this long on average between searches (as people "
                         "do: type, read, play), after the measure with no pause.")
    ap.add_argument("--workers", type=int, help="Serve with `dailies serve --workers N` in processes of its own "
                                                "(default: in this process, as the figures so far)")
    ap.add_argument("--write-takes", type=int, help=argparse.SUPPRESS)   # the writer process
    ap.add_argument("--index", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--stop", type=Path, help=argparse.SUPPRESS)                # the writer stops when it appears
    ap.add_argument("--ttff", type=Path, metavar="INDEX", help="Only time to first frame, on this index "
                                                                 "(e.g. demo-index), in Chromium.")
    ap.add_argument("--ttff-query", default="We have to follow the data, not the calendar.")
    ap.add_argument("--proxy-cost", type=Path, metavar="INDEX", help="Only proxy cost against index time, on "
                                                                       "this index of the fixture shoot.")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    if args.ttff:
        time_to_first_frame(args.ttff, args.ttff_query, args.chromium, args.workers)
        return 0
    if args.proxy_cost:
        proxy_cost(args.proxy_cost)
        return 0
    if args.write_takes is not None:                        # child: the one writer, adding takes
        lines, _ = synthetic_lines(args.write_takes * LINES_PER_TAKE, seed=11)
        t0 = time.time()
        build_index(args.index, lines, start_take=10_000_000, stop=args.stop)
        print(f"in {time.time() - t0:.0f} s", flush=True)
        return 0

    import httpx

    tmp = tempfile.TemporaryDirectory(prefix="bench-serve-")
    index = args.keep or Path(tmp.name) / "index"
    lines, corpus = synthetic_lines(args.lines)
    if not (index / "catalog.sqlite").is_file():
        secs = build_index(index, lines)
        print(f"built {len(lines)} distinct lines from {len(corpus)} screenplay speeches in {secs:.0f} s: {index}")
    queries = bench_queries(corpus, args.queries)

    server, base = serve_processes(index, args.workers) if args.workers else serve(index)
    if args.workers:
        print(f"served by `dailies serve --workers {args.workers}` in its own processes")
    pid = getattr(server, "pid", None)                     # CPU is counted for `dailies serve --workers N` only
    with httpx.Client(base_url=base, timeout=60) as c:
        t = time.perf_counter()
        c.get("/api/search/line", params={"q": "warm up the caches and the embedding"}).raise_for_status()
        print(f"first query (cold: loads the text embedding): {(time.perf_counter() - t) * 1000:.0f} ms")
        cpu0 = tree_cpu(pid)
        ms, hits = [], 0
        for q in queries:
            t = time.perf_counter()
            r = c.get("/api/search/line", params={"q": q})
            ms.append((time.perf_counter() - t) * 1000)
            r.raise_for_status()
            hits += bool(r.json())
        warm_cpu = cpu_note(cpu0, tree_cpu(pid), len(queries))
        # A download for the edit (the review room's export links) runs the page's search again and writes the files
        downloads = {}
        for fmt, what in (("fcpxml", "stringout"), ("edl", "stringout"), ("avid", "markers")):
            took = []
            for q in queries[:50]:
                t = time.perf_counter()
                r = c.get(f"/api/export/{what}", params={"q": q, "format": fmt})
                took.append((time.perf_counter() - t) * 1000)
                if r.status_code not in (200, 404):            # 404: the search found nothing to export
                    raise SystemExit(f"/api/export/{what}?format={fmt} answered {r.status_code}: {r.text[:200]}")
            downloads[fmt] = took
    print(f"search API, one client, warm: {summary(ms)}; queries with hits {hits}/{len(queries)} (goal p95 < 100 ms)"
          f"{warm_cpu}")
    for fmt, took in downloads.items():
        print(f"  download of the hits for the edit ({fmt}, /api/export), one client: {summary(took)}")

    # The writer writes new takes from before the first client's query until after the last one's answer: it
    # starts, commits a first take, says so, and stops at the first commit after the clients are done.
    stop = index.parent / f".{index.name}.bench-stop"
    stop.unlink(missing_ok=True)
    writer = subprocess.Popen([sys.executable, __file__, "--write-takes", "1000", "--index", str(index),
                               "--stop", str(stop)], stdout=subprocess.PIPE, text=True)
    said = writer.stdout.readline().strip()
    if said != "writing":
        raise SystemExit(f"the writer did not start writing (it said {said!r}, exit status {writer.poll()})")

    def load(pause: float) -> tuple[list[float], list[str], float, str]:
        """--clients clients sharing the queries, each waiting ``pause`` seconds on average (exponential, seeded)
        between an answer and its next search (0: none): latencies, errors, wall seconds, the server's CPU."""
        lat: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()

        def client(k: int):
            rng = random.Random(k)
            with httpx.Client(base_url=base, timeout=60) as c:
                for q in queries[k::args.clients]:
                    if pause:
                        time.sleep(rng.expovariate(1 / pause))
                    t = time.perf_counter()
                    try:
                        r = c.get("/api/search/line", params={"q": q})
                        ok = r.status_code == 200
                        err = None if ok else f"{r.status_code} {r.text[:100]}"
                    except Exception as exc:
                        err = f"{type(exc).__name__}: {exc}"
                    with lock:
                        lat.append((time.perf_counter() - t) * 1000)
                        if err:
                            errors.append(err)

        cpu0 = tree_cpu(pid)
        t0 = time.time()
        threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        return lat, errors, time.time() - t0, cpu_note(cpu0, tree_cpu(pid), len(lat))

    lat, errors, wall, busy_cpu = load(0.0)
    paced = load(args.pause) if args.pause else None
    writing = writer.poll() is None
    stop.touch()
    wrote = " ".join(writer.stdout.read().split())
    writer.wait()
    stop.unlink(missing_ok=True)
    if not writing:
        print(f"  the writer ended before the clients did (exit status {writer.returncode}): not measured under load")
    rate = len(lat) / wall
    print(f"search API, {args.clients} clients while `index` writes (the writer {wrote}, all through): "
          f"{summary(lat)}, {len(errors)} errors, {rate:.1f} queries/s (goal p95 < 300 ms, no error){busy_cpu}")
    # Each client asks again as soon as it has its answer, so the server always has --clients searches to do, and
    # each waits about clients / throughput (Little's law): this figure measures throughput, not responsiveness.
    print(f"  every client searching again at once: each waits about {args.clients} / {rate:.1f} queries/s = "
          f"{args.clients / rate:.2f} s; p95 < 300 ms would take about {args.clients / 0.3:.0f} queries/s here")
    if paced is not None:
        p_lat, p_err, p_wall, p_cpu = paced
        print(f"search API, {args.clients} clients pausing {args.pause:g} s on average between searches, while `index` "
              f"writes: {summary(p_lat)}, {len(p_err)} errors, {len(p_lat) / p_wall:.1f} queries/s{p_cpu}")
    for e in (errors + (paced[1] if paced else []))[:5]:
        print("  error:", e)
    server.should_exit = True
    print(json.dumps({"lines": len(lines), "warm_p50_ms": round(statistics.median(ms), 1),
                      "warm_p95_ms": round(pct(ms, 95), 1), "concurrent_p50_ms": round(statistics.median(lat), 1),
                      "concurrent_p95_ms": round(pct(lat, 95), 1), "concurrent_queries_per_s": round(rate, 1),
                      "concurrent_errors": len(errors),
                      **({"paced_pause_s": args.pause, "paced_p50_ms": round(statistics.median(paced[0]), 1),
                          "paced_p95_ms": round(pct(paced[0], 95), 1), "paced_errors": len(paced[1])}
                         if paced else {})}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
