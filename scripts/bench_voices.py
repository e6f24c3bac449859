#!/usr/bin/env python
"""How the voice registry scales with the number of takes in an index.

    .venv/bin/python scripts/bench_voices.py [--takes 250,1000] [--cast 40] [--catalog 200,1000]

A production has hundreds to thousands of takes. Each take is filed under the production's voices
(``identity.identify``) and, at the end of every run that filed takes, every take is read again
against all the others (``identity.identify_all``). This builds synthetic takes (a cast of voices as
random unit vectors, 2-3 speakers a take, 20-60 s of turns, 1.5 s speech windows as noisy copies of the
speaker's voice; no model runs: this measures the bookkeeping, not the embeddings) and prints, for each
number of takes, the time to file them one by one and the time of one end-of-run pass, per take. Both
should stay flat as takes grow: a cost that grows with the index size per take is quadratic overall.

``--catalog N,...`` measures the whole end-of-run pass as `dailies index` runs it
(``Indexer.reread_voices``: every take's diarization read from the step cache, re-read, its lines
attributed again) on real catalogs: the fixture shoot is indexed once (speakers on, no picture; in
.bench/voices/), then its speaking takes are copied in the catalog (diarizations, lines, voices) up to
N takes. It prints the pass after a run that filed one take (goal: flat as the index grows), the pass over
every take with its time per take, and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def synthetic_takes(n: int, cast: int, seed: int = 0) -> dict:
    from pyannote.core import Annotation, Segment

    from indexer.speakers.records import Diarization, LocalSpeaker, SpeechSegment, Windows

    rng = np.random.default_rng(seed)
    people = rng.normal(size=(cast, 192))
    people /= np.linalg.norm(people, axis=1, keepdims=True)

    def noisy(p: int, size: int) -> np.ndarray:
        x = people[p] + 0.6 * rng.normal(size=(size, 192)) / np.sqrt(192)
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    takes = {}
    for t in range(n):
        who = rng.choice(cast, size=int(rng.integers(2, 4)), replace=False)
        ann, starts, embs, segs = Annotation(), [], [], []
        clock = 0.0
        for k in range(int(rng.integers(4, 10))):
            p = int(rng.integers(len(who)))
            dur = float(rng.uniform(2.0, 8.0))
            label = f"SPEAKER_{p:02d}"
            ann[Segment(clock, clock + dur), k] = label
            w0 = np.arange(clock, clock + dur - 1.5 + 1e-6, 0.5)
            starts.extend(w0)
            e = noisy(int(who[p]), len(w0))
            embs.append(e)
            segs.append(SpeechSegment(clock, clock + dur, label, e.mean(axis=0) / np.linalg.norm(e.mean(axis=0))))
            clock += dur + float(rng.uniform(0.2, 1.0))
        speakers = []
        for p in range(len(who)):
            label = f"SPEAKER_{p:02d}"
            if label in ann.labels():
                v = noisy(int(who[p]), 1)[0]
                speakers.append(LocalSpeaker(label, v, float(ann.label_duration(label))))
        d = Diarization(ann, ann, speakers, clock, segments=segs)
        d.windows = Windows(np.array(starts), np.full(len(starts), 1.5), np.concatenate(embs))
        takes[f"take{t:05d}"] = d
    return takes


def _copied_catalog(base: Path, out: Path, takes: int) -> int:
    """``base`` (an index) copied to ``out`` with its speaking takes repeated in the catalog until
    there are ``takes`` of them (new take ids; same diarizations, lines and voices). Chroma is not
    copied: the pass writes vectors only for takes whose lines change."""
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    shutil.copy2(base / "catalog.sqlite", out / "catalog.sqlite")
    db = sqlite3.connect(str(out / "catalog.sqlite"))
    speaking = [r[0] for r in db.execute("SELECT take_id FROM steps WHERE step='diarize' ORDER BY take_id")]
    if not speaking:
        raise SystemExit(f"{base}: no take was diarized there (indexed without speaker models?); delete it and run again")
    columns = {t: [r[1] for r in db.execute(f"PRAGMA table_info({t})") if r[1] != "id"]
               for t in ("takes", "shots", "steps", "voice_locals", "lines")}
    copies = 0
    with db:
        for k in range(1, -(-takes // len(speaking))):
            for take_id in speaking:
                new = f"{take_id[:6]}{k:06d}"
                for table, cols in columns.items():
                    names = ",".join(f'"{c}"' for c in cols)
                    for row in db.execute(f"SELECT {names} FROM {table} WHERE take_id=?", (take_id,)).fetchall():
                        row = list(row)
                        row[cols.index("take_id")] = new
                        if table == "takes":
                            row[cols.index("content_hash")] += f"-copy{k}"
                        if table == "lines":
                            row[cols.index("line_id")] = row[cols.index("line_id")].replace(take_id, new)
                        db.execute(f"INSERT INTO {table}({names}) VALUES({','.join('?' * len(cols))})", row)
                copies += 1
    db.close()
    return len(speaking) + copies


def catalog_pass(sizes: list[int]) -> None:
    import resource
    import subprocess

    import json

    from indexer.pipeline import VOICES_STALE, Indexer
    from indexer.store import Index

    work = ROOT / ".bench" / "voices"
    base = work / "fixture"
    if not (base / "catalog.sqlite").exists():
        print("indexing the fixture shoot once (speakers on, no picture) ...", flush=True)
        done = subprocess.run([str(Path(sys.executable).parent / "dailies"), "index", str(ROOT / "fixtures" / "shoot"),
                               "--index", str(base), "--no-visual"], capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"indexing the fixture shoot failed:\n{done.stderr[-2000:]}")
    print("the end-of-run pass on real catalogs (Indexer.reread_voices), the fixture shoot's takes copied")
    warm = Indexer(Index.open_writer(base))
    warm._load_speakers()
    if warm.diarizer is None:
        raise SystemExit(f"no speaker models: {warm.speakers_skipped}")
    warm.reread_voices()                               # imports and first calls, not measured
    warm.index.close()
    for n in sizes:
        out = work / f"copies{n}"
        takes = _copied_catalog(base, out, n)
        indexer = Indexer(Index.open_writer(out))
        indexer._load_speakers()
        one = indexer.index.takes(status="indexed")[-1].take_id
        indexer.index.set_meta(VOICES_STALE, json.dumps([one]))      # a run that filed one take
        t0 = time.perf_counter()
        indexer.reread_voices()
        one_s = time.perf_counter() - t0
        indexer.index.set_meta(VOICES_STALE, "1")                    # every take (after a merge or an upgrade)
        t0 = time.perf_counter()
        changed = indexer.reread_voices()
        seconds = time.perf_counter() - t0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  {takes:6d} takes: one take filed {one_s:5.2f} s; every take {seconds:6.1f} s "
              f"({seconds / takes * 1000:5.1f} ms/take), {changed} takes' lines changed; peak RSS so far {rss:.0f} MiB",
              flush=True)
        indexer.index.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--takes", default="250,1000", help="comma-separated numbers of takes")
    ap.add_argument("--cast", type=int, default=40, help="voices in the production")
    ap.add_argument("--catalog", default="", help="also the whole end-of-run pass on real catalogs of these "
                                                   "numbers of takes (comma-separated)")
    args = ap.parse_args()
    from indexer.speakers.identity import VoiceRegistry, identify, identify_all
    from indexer.store import VoiceTables

    sizes = [int(x) for x in args.takes.split(",")]
    print(f"synthetic takes, a cast of {args.cast}; per take: filing (as indexed) and one end-of-run pass")
    rows = []
    for n in sizes:
        takes = synthetic_takes(n, args.cast)
        reg = VoiceRegistry(VoiceTables.memory())
        t0 = time.perf_counter()
        for take_id, d in takes.items():
            identify(d, reg, take_id)
        t1 = time.perf_counter()
        identify_all(takes, reg)
        t2 = time.perf_counter()
        voices = len(reg.summaries())
        rows.append((n, (t1 - t0) / n, (t2 - t1) / n))
        print(f"  {n:6d} takes: filing {t1 - t0:7.1f} s ({(t1 - t0) / n * 1000:5.1f} ms/take), end-of-run pass "
              f"{t2 - t1:7.1f} s ({(t2 - t1) / n * 1000:5.1f} ms/take); {voices} voices")
    if len(rows) > 1:
        (n0, f0, e0), (n1, f1, e1) = rows[0], rows[-1]
        print(f"  per-take cost at {n1} takes / at {n0} takes: filing {f1 / f0:.2f}, end-of-run pass {e1 / e0:.2f} "
              f"(1 = linear overall; {n1 / n0:.0f} = quadratic)")
    if args.catalog:
        catalog_pass([int(x) for x in args.catalog.split(",")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
