#!/usr/bin/env python
"""Measure the int8 CAM++'s activation ranges again (issue 14), the way the ranges dailies ships
(indexer/speakers/campp_int8_ranges_v2.json) were measured, and make the int8 file from the float ONNX export in
the model cache: static, per-channel, QDQ, the convolutions only (``nets.int8_settings``), calibrated on stretches
of AMI train files (tuning data; the AMI corpus is CC BY 4.0). dailies itself makes the file from the shipped
ranges, without audio (``nets.quantize_campp``); this script is how those ranges were made, and how to make them
for a new float export (a new ``CAMPP_EXPORT_VERSION``).

    uv run python scripts/make_int8_campp.py OUT.onnx [--ranges-out JSON]
    uv run python scripts/eval_diarization.py --campp-onnx OUT.onnx [--campp-onnx-chunks-only] [--tuning-only]

The calibration: 64 stretches of 500, 700 and 900 fbank frames (mean-normalised, as the engine feeds CAM++) at
seeded random places of trn01, trn03, trn06 and trn08. The generator first draws the places of 108 stretches that
are not used (trn01, trn03, trn05, trn07: the first experiment's calibration and test sets), so that the file is
byte for byte the one evaluated (sha256 5561b23b...); its sha256 is printed. Quantising from the ranges alone
(``--ranges-out``, then ``nets.quantize_campp(float, out, JSON)``) gives the same file.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("DAILIES_SHARED", ROOT.parent / "shared"))
AMI = SHARED / "eval" / "diarization" / "pyannote_debug_ami"


def make_int8(campp: Path, out: Path, ranges_out: Path | None = None) -> None:
    """The evaluated int8 CAM++ from the float export ``campp`` into ``out`` (and the calibration's ranges into
    ``ranges_out``)."""
    from onnxruntime.quantization import CalibrationDataReader, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from indexer.media import load_audio
    from indexer.speakers import nets

    rng = np.random.default_rng(0)

    def stretches(name: str, n: int) -> list[np.ndarray]:
        full = nets.fbank(load_audio(str(AMI / f"{name}.wav")), normalize=False)
        found = []
        for i in range(n):
            length = (500, 700, 900)[i % 3]
            s = int(rng.integers(0, full.shape[0] - length))
            x = full[s: s + length]
            found.append((x - x.mean(axis=0, keepdims=True)).astype(np.float32))
        return found

    for name, n in (("trn01", 24), ("trn03", 24), ("trn05", 30), ("trn07", 30)):
        stretches(name, n)                                  # drawn, not used (see the module's docstring)
    calib = [f for name in ("trn01", "trn03", "trn06", "trn08") for f in stretches(name, 16)]

    class Calibration(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{"feats": f[None]} for f in calib])

        def get_next(self):
            return next(self.items, None)

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(campp), str(pre), skip_optimization=False, skip_symbolic_shape=True)
        quantize_static(str(pre), str(out), Calibration(), calibration_cache_path=str(ranges_out) if ranges_out else None,
                        **nets.int8_settings())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--ranges-out", type=Path, metavar="JSON",
                    help="also write the calibration's activation ranges (ONNX Runtime's calibration cache, about "
                         "100 KB): quantize_static(..., None, calibration_cache_path=JSON) with the same settings makes "
                         "the same file from them alone, without the audio")
    args = ap.parse_args()
    if args.ranges_out is not None and args.ranges_out.exists():
        print(f"{args.ranges_out} exists: ONNX Runtime would read its ranges instead of calibrating; remove it first.")
        return 1
    from indexer.models import diarization
    from indexer.speakers import nets

    _, campp = nets.onnx_paths(diarization.resolve())
    make_int8(campp, args.out, args.ranges_out)
    print(f"{args.out}: sha256 {hashlib.sha256(args.out.read_bytes()).hexdigest()} (from {campp.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
