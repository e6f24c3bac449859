"""Diarization on the CPU against the GPU, on the same files, in one run.

    .venv/bin/python scripts/bench_diarization_device.py [--devices cpu,cuda] [--threads N] [FILE.wav ...]

With no files: the AMI debug files and pyannote's sample from ../shared/eval/diarization (with their
reference RTTMs). For each device it prints seconds per file (after a warm-up), the real-time factor,
DER against the reference where there is one, and how far the GPU's turns are from the CPU's (DER of
one against the other: the same models should give the same speakers). Then the speed-up.

The diarizer is indexer.speakers.diarize.Diarizer exactly as `dailies index --device cuda` runs it:
segmentation-3.0 and CAM++ on the GPU, the refinement, the resegmentation and the windows read
against the voices of other takes included. Reads 16 kHz WAV with scipy (no FFmpeg needed), so it runs
on a machine with only PyTorch and pyannote.audio.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def load_wav(path: Path) -> np.ndarray:
    from scipy.io import wavfile

    rate, data = wavfile.read(str(path))
    if rate != 16000:
        raise SystemExit(f"{path}: {rate} Hz; this benchmark reads 16 kHz files only")
    data = data.astype(np.float32) / (32768.0 if data.dtype == np.int16 else 1.0)
    return data.mean(axis=1) if data.ndim == 2 else data


def default_files(shared: Path) -> list[tuple[Path, object]]:
    from pyannote.database.util import load_rttm

    out = []
    ami = shared / "eval" / "diarization" / "pyannote_debug_ami"
    refs = {}
    for rttm in sorted(ami.glob("debug.*.rttm")):
        refs.update(load_rttm(str(rttm)))
    for wav in sorted(ami.glob("*.wav")):
        out.append((wav, refs.get(wav.stem)))
    sample = shared / "eval" / "diarization" / "pyannote_sample" / "sample.wav"
    if sample.is_file():
        out.append((sample, load_rttm(str(sample.with_suffix(".rttm")))["sample"]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--shared", type=Path, default=Path(os.environ.get("DAILIES_SHARED", ROOT.parent / "shared")))
    ap.add_argument("--devices", default="cpu,cuda")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    import torch
    from pyannote.core import Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    from indexer.speakers.diarize import Diarizer
    from indexer.models.diarization import resolve

    files = [(f, None) for f in args.files] if args.files else default_files(args.shared)
    if not files:
        print("no files (give WAV files, or put ../shared/eval/diarization beside the checkout)", file=sys.stderr)
        return 2
    devices = [d for d in args.devices.split(",") if d]
    if "cuda" in devices and not torch.cuda.is_available():
        print("no GPU here: CPU only", file=sys.stderr)
        devices = [d for d in devices if d != "cuda"]
    if "cuda" in devices:
        print(f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}; {args.threads} CPU threads")
    models = resolve()
    audio = {f: load_wav(f) for f, _ in files}
    total = sum(len(a) for a in audio.values()) / 16000
    results: dict[str, dict[Path, tuple[float, object]]] = {}
    for dev in devices:
        dz = Diarizer(models, threads=args.threads, device=dev)
        dz(next(iter(audio.values()))[: 16000 * 5])                 # load + warm up, not timed
        results[dev] = {}
        for f, _ in files:
            if dev == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            d = dz(audio[f], uri=f.stem)
            if dev == "cuda":
                torch.cuda.synchronize()
            results[dev][f] = (time.perf_counter() - t0, d)
    print(f"\n{len(files)} files, {total:.0f} s of sound")
    print(f"{'file':10} " + " ".join(f"{dev + ' s':>8} {'DER':>7} {'spk':>4}" for dev in devices)
          + ("   GPU vs CPU turns" if len(devices) > 1 else ""))
    for f, ref in files:
        uem = Timeline([Segment(0, len(audio[f]) / 16000)])
        row = []
        for dev in devices:
            secs, d = results[dev][f]
            der = DiarizationErrorRate(collar=0.0)(ref, d.turns, uem=uem) if ref is not None else float("nan")
            row.append(f"{secs:8.2f} {der:7.2%} {len(d.labels):4d}")
        extra = ""
        if len(devices) > 1:
            a, b = results[devices[0]][f][1], results[devices[1]][f][1]
            extra = f"   {DiarizationErrorRate(collar=0.0)(a.turns, b.turns, uem=uem):6.2%}" if len(a.turns) else ""
        print(f"{f.stem:10} " + " ".join(row) + extra)
    secs = {dev: sum(s for s, _ in results[dev].values()) for dev in devices}
    for dev in devices:
        print(f"{dev}: {secs[dev]:.1f} s in all, RTF {secs[dev] / total:.4f}")
    if len(devices) > 1:
        print(f"speed-up {devices[1]} / {devices[0]}: {secs[devices[0]] / secs[devices[1]]:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
