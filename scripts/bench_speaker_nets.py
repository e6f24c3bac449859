#!/usr/bin/env python
"""The default speaker networks by ONNX Runtime against torch (issue 14), on the same real audio in one
run: segmentation-3.0 on 10 s chunks, CAM++ on speech stretches of several lengths, the Kaldi fbank
(numpy against torchaudio), and the time to load both networks in a fresh process. Prints each side's
best time (of --repeat runs, the sides taking turns), the ratio torch / ONNX Runtime (> 1: ONNX
Runtime is faster), and how far the outputs are apart. Also measures the int8 CAM++ that the index runs
for its chunk embeddings on the CPU (``nets.quantize_campp``): speed and cosine against float.

    uv run python scripts/bench_speaker_nets.py [--threads 2] [--repeat 5] [--audio FILE]

The exports go to a temporary folder (never the model cache); the models come from the model cache
(or DAILIES_MODELS / ../shared/models).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("DAILIES_SHARED", ROOT.parent / "shared"))
DEFAULT_AUDIO = SHARED / "eval" / "diarization" / "pyannote_debug_ami" / "dev00.wav"


def _race(torch_fn, ort_fn, repeat: int) -> tuple[float, float]:
    """The fastest of ``repeat`` runs of each side after a warm-up, the two sides taking turns (on a
    shared machine, both meet the same disturbances; the fastest run is the least disturbed)."""
    torch_fn(), ort_fn()                   # warm-up (kernel selection, arenas)
    times: tuple[list, list] = ([], [])
    for _ in range(repeat):
        for fn, out in ((torch_fn, times[0]), (ort_fn, times[1])):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    return min(times[0]), min(times[1])


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _row(what: str, times: tuple[float, float], note: str) -> None:
    t_torch, t_ort = times
    print(f"{what:<28} torch {t_torch * 1000:8.1f} ms   onnxruntime {t_ort * 1000:8.1f} ms   "
          f"torch/ort {t_torch / t_ort:5.2f}   {note}")


_LOAD_TORCH = """
import time; t = time.perf_counter()
from indexer.models import diarization
from indexer.speakers.campplus import CamppEmbedder
from pyannote.audio import Model
m = diarization.resolve(verify=False)
seg, emb = Model.from_pretrained(m.segmentation), CamppEmbedder(m.embedding, verify=False, threads={threads})
print(time.perf_counter() - t)
"""
_LOAD_ORT = """
import time; t = time.perf_counter()
from indexer.models import diarization
from indexer.speakers import nets
m = diarization.resolve(verify=False)
seg, emb = nets.load_nets(m, threads={threads}, cache_dir={cache!r})
print(time.perf_counter() - t)
"""


def _load_times(threads: int, cache: str, repeat: int = 2) -> tuple[float, float]:
    """Seconds from nothing imported to both networks loaded, each in a fresh process (best of ``repeat``)."""
    import subprocess

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out: tuple[list, list] = ([], [])
    for _ in range(repeat):
        for code, times in ((_LOAD_TORCH, out[0]), (_LOAD_ORT, out[1])):
            res = subprocess.run([sys.executable, "-c", code.format(threads=threads, cache=cache)],
                                 capture_output=True, text=True, env=env, check=True)
            times.append(float(res.stdout.strip().splitlines()[-1]))
    return min(out[0]), min(out[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--audio", type=Path, default=DEFAULT_AUDIO)
    ap.add_argument("--batch", type=int, default=4, help="segmentation chunks per call (the pipeline's 4)")
    ap.add_argument("--int8-out", type=Path, help="keep the int8 CAM++ file here (for scripts/eval_diarization.py "
                    "--campp-onnx)")
    args = ap.parse_args()

    import torch

    from indexer.media import load_audio
    from indexer.models import diarization
    from indexer.speakers import campplus, nets

    torch.set_num_threads(args.threads)
    models = diarization.resolve()
    audio = load_audio(str(args.audio))
    print(f"audio: {args.audio} ({len(audio) / 16000:.1f} s); threads: {args.threads}; repeat: {args.repeat} "
          f"(best of); torch {torch.__version__}, onnxruntime {__import__('onnxruntime').__version__}")

    with tempfile.TemporaryDirectory(prefix="bench-nets-") as tmp:
        t = time.perf_counter()
        seg_path, campp_path = nets.onnx_paths(models, cache_dir=tmp)
        print(f"export of both (torch and pyannote.audio imported): {time.perf_counter() - t:.1f} s")
        _row("load both (fresh process)", _load_times(args.threads, tmp),
             "imports (torch + pyannote.audio, or onnxruntime) and weights")
        ort_seg = nets.OnnxSegmentation(seg_path, threads=args.threads)
        ort_campp = nets.OnnxCampp(campp_path, models.embedding, threads=args.threads, verify=False)
        torch_seg = nets.load_segmentation_torch(models.segmentation)
        torch_campp = campplus.CamppEmbedder(models.embedding, verify=False)

        # segmentation: every 10 s chunk at a 1 s step (pyannote's), in batches of --batch
        n = nets.CHUNK_SAMPLES
        starts = range(0, max(1, len(audio) - n + 1), 16000)
        chunks = np.stack([np.pad(audio[s: s + n], (0, max(0, s + n - len(audio)))) for s in starts])[:, None]
        batches = [chunks[i: i + args.batch] for i in range(0, len(chunks), args.batch)]

        def seg_torch():
            with torch.inference_mode():
                return np.concatenate([torch_seg(torch.from_numpy(b)).numpy() for b in batches])

        def seg_ort():
            return np.concatenate([ort_seg(b) for b in batches])

        a, b = seg_torch(), seg_ort()
        agree = float((a.argmax(-1) == b.argmax(-1)).mean())
        _row(f"segmentation ({len(chunks)} chunks)", _race(seg_torch, seg_ort, args.repeat),
             f"max |dlogp| {np.abs(a - b).max():.2e}, argmax agree {agree:.4%}")

        # CAM++: stretches of 0.5-10 s (the pipeline's bucketing to 50 frames, as load.py does)
        rng = np.random.default_rng(0)
        spans = []
        for seconds in (0.5, 1, 1.5, 2, 3, 5, 8, 10):
            for _ in range(4):
                s = int(rng.integers(0, max(1, len(audio) - int(seconds * 16000))))
                spans.append((s, s + int(seconds * 16000)))
        feats = [nets.fbank(audio[s:e]) for s, e in spans]

        def campp_torch():
            return torch_campp.embed_features(feats, bucket=50)

        def campp_ort():
            return ort_campp.embed_features(feats, bucket=50)

        ea, eb = campp_torch(), campp_ort()
        _row(f"CAM++ ({len(feats)} stretches)", _race(campp_torch, campp_ort, args.repeat),
             f"cosine min {_cos(ea, eb).min():.6f}")

        # fbank (numpy in the ort column): the whole file, and the stretches one by one
        fa, fb = campplus.fbank(audio).numpy(), nets.fbank(audio)
        _row("fbank, whole file (numpy)",
             _race(lambda: campplus.fbank(audio), lambda: nets.fbank(audio), args.repeat * 4),
             f"max |diff| {np.abs(fa - fb).max():.2e}")
        pieces = [audio[s:e] for s, e in spans]
        diff = max(float(np.abs(campplus.fbank(p).numpy() - nets.fbank(p)).max()) for p in pieces)
        _row(f"fbank, {len(pieces)} stretches (numpy)",
             _race(lambda: [campplus.fbank(p) for p in pieces], lambda: [nets.fbank(p) for p in pieces],
                   args.repeat * 4), f"max |diff| {diff:.2e}")

        # the int8 CAM++ the index runs for its chunk embeddings (nets.quantize_campp: static, per-channel, QDQ, the
        # convolutions only, from the ranges shipped in dailies). ONNX Runtime's dynamic quantisation was 3x slower
        # than float on this CPU (ConvInteger) with cosine 0.94; static on every op gave cosine 0.66.
        q_path = Path(args.int8_out or Path(tmp) / "campp-int8.onnx")
        nets.quantize_campp(campp_path, q_path)
        q_campp = nets.OnnxCampp(q_path, models.embedding, threads=args.threads, verify=False)
        eq = q_campp.embed_features(feats, bucket=50)
        t_f, t_q = _race(campp_ort, lambda: q_campp.embed_features(feats, bucket=50), args.repeat)
        c = _cos(eb, eq)
        print(f"{'CAM++ int8 vs float (ort)':<28} float {t_f * 1000:8.1f} ms   int8 {t_q * 1000:8.1f} ms   "
              f"float/int8 {t_f / t_q:5.2f}   cosine to float: min {c.min():.4f}, median {np.median(c):.4f}"
              + (f"; written to {q_path}" if args.int8_out else ""))

if __name__ == "__main__":
    main()
