#!/usr/bin/env python
"""Camera originals for the speed bench, made with PyAV from the real clips in ../shared/eval.

    uv run python scripts/make_camera_originals.py OUT_DIR [--seconds 64] [--only prores|uhd]

Writes (not committed: about 1.7 GB and 0.1 GB):
  * ``A001_C001_PRORES.mov``: 1920x1080 at 24000/1001, ProRes 422 HQ (prores_ks profile 3, 10-bit 4:2:2),
    with 4 channels of 24-bit 48 kHz PCM (a mix on 1-2 and the same speech on 3-4 at other gains), start TC
    01:00:00:00;
  * ``A002_C001_UHD.mp4``: 3840x2160 at 24000/1001, H.264 long GOP (libx264, 2 s GOP, B-frames), AAC stereo
    48 kHz.
The picture is real footage (the Popeye cartoons, Tears of Steel and Big Buck Bunny clips) cut together
every few seconds, so the hard cuts between segments are known to the frame; the clips' own cuts come on
top. The sound is real speech (pyannote's sample.wav and AMI train excerpts). ``OUT_DIR/cuts.json`` lists
the segment cuts of each file. A file already made with the same settings is kept.
"""

from __future__ import annotations

import argparse
import json
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT.parent / "shared" / "eval"
RATE = Fraction(24000, 1001)
PICTURE = [  # (clip, start s): segments cycle through these
    ("film/popeye_showorder/popeye_vob_T00-1.mkv", 3.0),
    ("film/tears_of_steel/tos_opencast_speech_to_text_test.mp4", 0.5),
    ("film/popeye_showorder/popeye_vob_T01-2.mkv", 10.0),
    ("shots/lhotse_big_buck_bunny_small.mp4", 0.2),
    ("film/popeye_showorder/popeye_vob_T02-3.mkv", 20.0),
    ("film/popeye_showorder/popeye_vob_T03-4.mkv", 5.0),
]
SEGMENT_SECONDS = [4.3, 5.1, 6.2, 3.7, 5.9, 4.6]    # uneven, so cuts fall on every kind of frame
SOUND = ["diarization/pyannote_sample/sample.wav", "diarization/pyannote_debug_ami/trn01.wav",
         "diarization/pyannote_debug_ami/trn02.wav"]
KINDS = {
    "prores": dict(name="A001_C001_PRORES.mov", codec="prores_ks", size=(1920, 1080), pix="yuv422p10le",
                   options={"profile": "3", "vendor": "apl0"}),
    "uhd": dict(name="A002_C001_UHD.mp4", codec="libx264", size=(3840, 2160), pix="yuv420p",
                options={"preset": "ultrafast", "g": "48", "bf": "2", "crf": "20"}),
}


def segments(seconds: float) -> list[tuple[str, float, int, int]]:
    """(clip, its start, first output frame, frame count) covering ``seconds`` of output."""
    total = int(round(seconds * RATE))
    out, first, k = [], 0, 0
    while first < total:
        clip, start = PICTURE[k % len(PICTURE)]
        n = min(total - first, int(round(SEGMENT_SECONDS[k % len(SEGMENT_SECONDS)] * RATE)))
        out.append((clip, start + 0.4 * (k // len(PICTURE)), first, n))
        first += n
        k += 1
    return out


def clip_frames(clip: str, start: float, count: int, size, pix):
    """``count`` output frames from ``clip`` at ``start`` s, sampled at our rate, scaled to ``size``."""
    import av

    with av.open(str(EVAL / clip)) as c:
        v = c.streams.video[0]
        v.thread_type = "AUTO"
        held, n = None, 0
        for f in c.decode(v):
            t = float(f.pts * f.time_base) - start
            while n < count and t > n / RATE + 1e-6:
                if held is not None:
                    yield held
                    n += 1
                else:
                    break
            if n >= count:
                return
            held = f.reformat(width=size[0], height=size[1], format=pix)
        while n < count and held is not None:
            yield held
            n += 1


def speech(seconds: float) -> np.ndarray:
    """Mono float32 at 48 kHz: the speech clips one after another."""
    import av

    parts = []
    for rel in SOUND:
        with av.open(str(EVAL / rel)) as c:
            rs = av.AudioResampler(format="flt", layout="mono", rate=48000)
            for f in c.decode(audio=0):
                for o in rs.resample(f):
                    parts.append(o.to_ndarray().reshape(-1))
    pcm = np.concatenate(parts)
    need = int(seconds * 48000)
    while len(pcm) < need:
        pcm = np.concatenate([pcm, pcm])
    return pcm[:need]


def make(kind: str, out_dir: Path, seconds: float) -> dict:
    import av

    spec = KINDS[kind]
    dest = out_dir / spec["name"]
    plan = segments(seconds)
    cuts = [first for _, _, first, _ in plan[1:]]
    record = {"file": spec["name"], "seconds": seconds, "rate": str(RATE), "frames": sum(n for *_, n in plan),
              "segment_cuts": cuts, "codec": spec["codec"], "size": list(spec["size"])}
    done = out_dir / f".{spec['name']}.json"
    if dest.exists() and done.exists() and json.loads(done.read_text()) == record:
        return record
    tmp = dest.with_name(dest.stem + ".part" + dest.suffix)
    mono = speech(seconds)
    with av.open(str(tmp), "w", format="mov" if dest.suffix == ".mov" else "mp4") as out:
        if kind == "prores":
            out.metadata["timecode"] = "01:00:00:00"
        vs = out.add_stream(spec["codec"], rate=RATE, options=spec["options"])
        vs.width, vs.height, vs.pix_fmt = *spec["size"], spec["pix"]
        vs.time_base = 1 / RATE
        if kind == "prores":
            a = out.add_stream("pcm_s24le", rate=48000, layout="quad")
            gains = np.array([0.8, 0.8, 0.5, 0.3], dtype=np.float32)[:, None]
            fmt = "s32"
        else:
            a = out.add_stream("aac", rate=48000, layout="stereo")
            gains = np.array([0.8, 0.8], dtype=np.float32)[:, None]
            fmt = "fltp"
        n = 0
        for clip, start, _, count in plan:
            for frame in clip_frames(clip, start, count, spec["size"], spec["pix"]):
                frame.pts, frame.time_base = n, 1 / RATE
                for pk in vs.encode(frame):
                    out.mux(pk)
                n += 1
            print(f"  {spec['name']}: {n}/{record['frames']} frames", file=sys.stderr)
        for pk in vs.encode(None):
            out.mux(pk)
        block = 1024
        for i in range(0, len(mono), block):
            chunk = mono[i:i + block][None, :] * gains
            if fmt == "s32":
                data = (np.clip(chunk, -1, 1) * (2**31 - 256)).astype(np.int32).T.copy().reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(data, format="s32", layout=a.layout.name)
            else:
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout=a.layout.name)
            frame.sample_rate, frame.pts = 48000, i
            for pk in a.encode(frame):
                out.mux(pk)
        for pk in a.encode(None):
            out.mux(pk)
    tmp.replace(dest)
    done.write_text(json.dumps(record))
    return record


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--seconds", type=float, default=64.0)
    ap.add_argument("--only", choices=sorted(KINDS))
    args = ap.parse_args()
    missing = [p for p, _ in PICTURE if not (EVAL / p).exists()] + [p for p in SOUND if not (EVAL / p).exists()]
    if missing:
        print(f"Missing evaluation media under {EVAL}: {', '.join(missing)}", file=sys.stderr)
        return 1
    args.out_dir.mkdir(parents=True, exist_ok=True)
    records = [make(k, args.out_dir, args.seconds) for k in (KINDS if args.only is None else [args.only])]
    (args.out_dir / "cuts.json").write_text(json.dumps({r["file"]: r for r in records}, indent=1))
    for r in records:
        print(f"{args.out_dir / r['file']}: {r['frames']} frames, {len(r['segment_cuts'])} segment cuts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
