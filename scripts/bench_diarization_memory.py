"""Peak memory and time of diarizing one long take (issue 4: peak RSS under 3 GB on a 1 h file).

    .venv/bin/python scripts/bench_diarization_memory.py [--minutes 60] [--threads 2] [--device cpu]

The take is made of real speech: the AMI debug files and pyannote's sample from
../shared/eval/diarization, repeated to the length asked for (so the same people come back, as
in a long take). Prints the wall time, the real-time factor, the speakers and segments found, the
peak RSS of the process (libraries and models included), and the size of the diarization as the
step cache stores it (windows for the re-read included).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--shared", type=Path, default=Path(os.environ.get("DAILIES_SHARED", ROOT.parent / "shared")))
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    os.environ.setdefault("DAILIES_MODELS", str(args.shared / "models"))
    from indexer.speakers.diarize import Diarizer
    from indexer.speakers.records import SAMPLE_RATE
    from indexer.media import load_audio
    from indexer.models.diarization import resolve

    base = args.shared / "eval" / "diarization"
    names = ("dev00", "dev01", "tst00", "tst01", "trn03", "trn05")
    parts = [load_audio(str(base / "pyannote_debug_ami" / f"{n}.wav")) for n in names]
    parts.append(load_audio(str(base / "pyannote_sample" / "sample.wav")))
    need = int(args.minutes * 60 * SAMPLE_RATE)
    reps = int(np.ceil(need / sum(len(p) for p in parts)))
    audio = np.concatenate(parts * reps)[:need]
    print(f"{len(audio) / SAMPLE_RATE / 60:.1f} min of speech; RSS before {_rss_mb():.0f} MB", flush=True)
    diarizer = Diarizer(resolve(), threads=args.threads, device=args.device)
    t0 = time.perf_counter()
    out = diarizer(audio, uri="long")
    secs = time.perf_counter() - t0
    cached = json.dumps(out.to_json())
    n_win = 0 if out.windows is None else len(out.windows.start)
    print(f"diarized in {secs:.0f} s (RTF {secs / (len(audio) / SAMPLE_RATE):.3f}); {len(out.labels)} speakers, "
          f"{len(out.segments)} segments, {n_win} windows; peak RSS {_rss_mb():.0f} MB (goal < 3072); "
          f"step cache {len(cached) / 1e6:.1f} MB")
    return 0


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    sys.exit(main())
