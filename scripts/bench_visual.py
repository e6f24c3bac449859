#!/usr/bin/env python
"""What the picture step (keyframes + CLIP + tags + store) adds to indexing, against ASR on the same files.

    uv run python scripts/bench_visual.py [FILES...] [--checkpoint FILE | --random] [--model ViT-B-32]
                                          [--device cpu] [--batch 32] [--every 5] [--margin 0.5]
                                          [--grid 0.25] [--repeat 1] [--json OUT.json]

Per file, in one process (models loaded once, before timing, as in an index run):
  * index: the pipeline indexing the file today (`Indexer.index_file`, forced: hash, probe, one decoding
    pass, shots, faster-whisper tiny.en, lines, text vectors, commit) -- the denominator;
  * pass A: that decoding pass alone (16 kHz audio + PySceneDetect on reduced frames);
  * ASR: faster-whisper tiny.en (bundled, int8 on CPU, beam 5, VAD, word timestamps) on that audio;
  * pass B: the same pass with the keyframe sink added, keyframes embedded in batches as they are
    decided, then per-shot zero-shot tags and the Chroma upsert of the frame records.
  picture step = (pass B - pass A) + tags + store, compared with ASR and with the index time.
  Default keyframe policy: start+margin, middle, end-margin, one every 5 s in long shots.

No CLIP weights can be downloaded here, so by default the real ViT-B-32 architecture runs with RANDOM
weights (same compute cost; vectors meaningless) and every output says so. Pass --checkpoint FILE to
time real weights. Timings on a shared machine are noisy: --repeat N keeps the fastest of N runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

# On a shared machine, OpenMP threads that spin while waiting fight the other processes: torch's
# ViT-B-32 ran 2x slower with 2 spinning threads than with 1 when the 2 cores were busy. Threads that
# sleep while waiting cost next to nothing when the machine is idle. Set before torch starts OpenMP;
# --omp-active keeps the library default.
if "--omp-active" not in sys.argv:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EVAL = ROOT.parent / "shared" / "eval"


def default_files() -> list[Path]:
    files = sorted(p for p in (ROOT / "fixtures" / "shoot").glob("*.*") if p.suffix.lower() in (".mov", ".mp4"))
    for rel in ("film/tears_of_steel/tos_opencast_speech_to_text_test.mp4", "shots/lhotse_big_buck_bunny_small.mp4",
                "film/popeye_showorder/popeye_vob_T00-1.mkv", "film/popeye_showorder/popeye_vob_T03-4.mkv"):
        if (EVAL / rel).exists():
            files.append(EVAL / rel)
    return files


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--checkpoint", default=None, help="real weights (file or open_clip folder)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--every", type=float, default=5.0)
    ap.add_argument("--margin", type=float, default=0.5)
    ap.add_argument("--grid", type=float, default=0.25)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-asr", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--omp-active", action="store_true", help="leave OMP_WAIT_POLICY to the library default")
    args = ap.parse_args()

    import numpy as np

    from indexer.config import IndexSettings, default_threads
    from indexer.pipeline import Indexer
    from indexer.models.clip import ClipSource, resolve_clip
    from indexer.picture.embedder import ClipEmbedder
    from indexer.picture.keyframes import KeyframePolicy
    from indexer.picture.step import PictureStep, store_frames
    from indexer.picture.tags import Tagger, load_vocabulary
    from indexer.media import decode, probe
    from indexer.shots import ShotDetector
    from indexer.store import Index

    threads = args.threads or default_threads()
    files = args.files or default_files()
    policy = KeyframePolicy(margin=args.margin, every=args.every, grid=args.grid)

    t0 = time.perf_counter()
    source = (resolve_clip(args.model, checkpoint=args.checkpoint) if args.checkpoint
              else ClipSource.random_weights(args.model, seed=0))
    embedder = ClipEmbedder(source, device=args.device, batch_size=args.batch, threads=threads)
    tagger = Tagger(embedder, load_vocabulary())
    embedder.embed_images([np.zeros((224, 398, 3), dtype=np.uint8)] * 2)      # warm the image path
    clip_load = time.perf_counter() - t0
    transcriber = None
    settings = IndexSettings(device=args.device if args.device != "cuda" else "auto", threads=threads)
    tmp_index = tempfile.TemporaryDirectory()
    indexer = Indexer(Index.open_writer(Path(tmp_index.name) / "pipeline"), settings)
    t0 = time.perf_counter()
    indexer.check_models()
    transcriber = indexer.transcriber()
    transcriber.transcribe(np.zeros(16000, dtype=np.float32))
    asr_load = time.perf_counter() - t0
    print(f"CLIP: {embedder.name} on {embedder.device} (batch {args.batch}, {threads} threads); "
          f"loaded + tag prompts in {clip_load:.1f} s" + ("   <-- RANDOM WEIGHTS: timing only" if source.random else ""),
          file=sys.stderr)
    print(f"keyframes: {policy}; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(default)')}", file=sys.stderr)

    rows = []
    with tmp_index, Index.open_writer(Path(tmp_index.name) / "idx") as idx:
        for n, path in enumerate(files):
            info = probe(str(path))
            if not info.has_video:
                continue
            best = None
            for _ in range(max(1, args.repeat)):
                det = ShotDetector(info.rate)
                ta = time.perf_counter()
                dec_a = decode(info, audio=info.has_audio, sinks=[det])
                pass_a = time.perf_counter() - ta
                shots = det.finish(dec_a.frames)

                ti = time.perf_counter()
                indexer.settings.force = True
                res_i = indexer.index_file(str(path))
                index_time = time.perf_counter() - ti
                if res_i.status != "indexed":
                    print(f"{path.name}: {res_i.status} {res_i.message}", file=sys.stderr)

                asr = 0.0
                if not args.no_asr and dec_a.audio is not None:
                    ts = time.perf_counter()
                    transcriber.transcribe(dec_a.audio)
                    asr = time.perf_counter() - ts

                det_b = ShotDetector(info.rate)
                step = PictureStep(embedder, info.rate, take_id=f"t{n}", policy=policy, detector=det_b,
                                   tagger=tagger)
                tb = time.perf_counter()
                dec_b = decode(info, audio=info.has_audio, sinks=[det_b, step.sink])
                pass_b = time.perf_counter() - tb
                shots_b = det_b.finish(dec_b.frames)
                tf = time.perf_counter()
                result = step.finish(shots_b, dec_b.frames)
                finish = time.perf_counter() - tf
                tw = time.perf_counter()
                store_frames(idx, f"t{n}", info, result)
                store = time.perf_counter() - tw
                picture = max(0.0, pass_b - pass_a) + finish + store
                row = {
                    "file": path.name, "seconds": round(info.duration, 2), "frames": dec_a.frames,
                    "size": f"{info.width}x{info.height}", "audio": info.has_audio, "shots": len(shots_b),
                    "keyframes": len(result.frames), "converted": result.converted,
                    "index": index_time, "pass_a": pass_a, "asr": asr, "pass_b": pass_b, "embed": step.embed_seconds,
                    "tags_finish": finish, "store": store, "picture": picture,
                }
                if best is None or row["picture"] + row["index"] < best["picture"] + best["index"]:
                    best = row
            rows.append(best)

    def pct(a, b):
        return f"{100 * a / b:5.1f}%" if b > 0 else "   n/a"

    head = (f"{'file':28} {'dur s':>6} {'shots':>5} {'kf':>4} {'conv':>5} {'index':>6} {'passA':>6} {'ASR':>6} "
            f"{'passB':>6} {'embed':>6} {'pic':>6} {'ms/shot':>7} {'pic/ASR':>7} {'+index':>7}")
    print(head)
    for r in rows:
        per_shot = 1000 * r["picture"] / max(1, r["shots"])
        print(f"{r['file'][:28]:28} {r['seconds']:6.1f} {r['shots']:5d} {r['keyframes']:4d} {r['converted']:5d} "
              f"{r['index']:6.2f} {r['pass_a']:6.2f} {r['asr']:6.2f} {r['pass_b']:6.2f} {r['embed']:6.2f} "
              f"{r['picture']:6.2f} {per_shot:7.0f} {pct(r['picture'], r['asr']):>7} {pct(r['picture'], r['index']):>7}")
    with_audio = [r for r in rows if r["audio"]]
    tot = {k: sum(r[k] for r in rows) for k in ("picture", "index", "asr", "embed", "shots", "keyframes")}
    tot_a = {k: sum(r[k] for r in with_audio) for k in ("picture", "index", "asr")}
    summary = {
        "clip": embedder.name, "random_weights": source.random, "device": embedder.device, "threads": threads,
        "policy": policy.key(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "clip_load_seconds": round(clip_load, 2), "asr_load_seconds": round(asr_load, 2),
        "embed_ms_per_shot": round(1000 * tot["embed"] / max(1, tot["shots"]), 1),
        "embed_ms_per_frame": round(1000 * tot["embed"] / max(1, tot["keyframes"]), 1),
        "picture_ms_per_shot": round(1000 * tot["picture"] / max(1, tot["shots"]), 1),
        "files_with_audio": {
            "picture_over_asr": round(tot_a["picture"] / tot_a["asr"], 3) if tot_a["asr"] else None,
            "picture_added_to_index": round(tot_a["picture"] / tot_a["index"], 3) if tot_a["index"] else None,
        },
        "all_files_picture_added_to_index": round(tot["picture"] / max(1e-9, tot["index"]), 3),
        "rows": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in rows],
    }
    print(f"\nper shot: embedding {summary['embed_ms_per_shot']} ms, whole picture step "
          f"{summary['picture_ms_per_shot']} ms; per keyframe: {summary['embed_ms_per_frame']} ms")
    fa = summary["files_with_audio"]
    if fa["picture_over_asr"] is not None:
        print(f"files with sound: picture step = {100 * fa['picture_over_asr']:.1f}% of ASR time, adds "
              f"{100 * fa['picture_added_to_index']:.1f}% to index time (goal <= 30%)")
    print(f"all files: picture step adds {100 * summary['all_files_picture_added_to_index']:.1f}% to index time")
    if source.random:
        print("NOTE: CLIP weights are RANDOM (real ViT-B-32 architecture, same compute); vectors are meaningless.")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
