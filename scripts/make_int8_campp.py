#!/usr/bin/env python
"""The int8 CAM++ this project evaluated (stop 34's note, issue 14), made again: static, per-channel, QDQ,
the convolutions only, from the float ONNX export in the model cache, calibrated on stretches of AMI train
files (tuning data). Not used by dailies: an evaluation aid.

    PYTHONPATH=/tmp/onnxpkg uv run python scripts/make_int8_campp.py OUT.onnx
    uv run python scripts/eval_diarization.py --campp-onnx OUT.onnx [--campp-onnx-chunks-only] [--tuning-only]

Needs the ``onnx`` package, which is not a dependency of dailies (``pip install --target /tmp/onnxpkg --no-deps
onnx ml_dtypes``). The calibration: 64 stretches of 500, 700 and 900 fbank frames (mean-normalised, as the
engine feeds CAM++) at seeded random places of trn01, trn03, trn06 and trn08. The generator first draws the
places of 108 stretches that are not used (trn01, trn03, trn05, trn07: the first experiment's calibration and
test sets), so that the file is byte for byte the one evaluated; its sha256 is printed. With ``--ranges-out``
the activation ranges are kept too: quantising from them alone (``calibration_cache_path``, no audio) gives the
same file, which is how a user's machine could make it without the AMI audio.
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
    ``ranges_out``). ImportError without the ``onnx`` package."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
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
        quantize_static(str(pre), str(out), Calibration(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"],
                        calibration_cache_path=str(ranges_out) if ranges_out else None)


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
    try:
        make_int8(campp, args.out, args.ranges_out)
    except ImportError as exc:
        print(f"onnxruntime.quantization is not importable ({exc}): install the onnx package (see --help).")
        return 1
    print(f"{args.out}: sha256 {hashlib.sha256(args.out.read_bytes()).hexdigest()} (from {campp.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
