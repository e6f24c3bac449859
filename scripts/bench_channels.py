#!/usr/bin/env python
"""What transcribing iso tracks costs (issue 19): a 4-track take (MIX, BOOM, lav LEO, lav MAYA; about
20 % of its speech overlapped) indexed with `--channels mix` (the mix only, as before) and with the
default `--channels auto` (each iso transcribed where its owner speaks, the mix where no iso does).

    uv run python scripts/bench_channels.py [--minutes 2] [--overlap 0.16] [--no-speakers] [--repeat 1]

The take is built from fixtures/sound/12A_T5_POLY.wav: each delivery of its manifest cut from its owner's
lav, laid out again (alternating actors, pauses of 0.6-1.2 s, every few pairs overlapped so that
``--overlap`` of the speech is overlapped) and mixed into four tracks the way scripts/make_fixtures.py
does (-20 dB bleed on the other lav, a boom hearing both, a mix of all). Each run is a separate
`dailies index` process into a fresh index; prints the wall times, their ratio (goal <= 1.5), the
seconds each transcribed, and how many deliveries `search line` finds (match >= 60 %).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import wave
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SOUND = ROOT / "fixtures" / "sound"
SR = 16000


def _fixtures_module():
    spec = importlib.util.spec_from_file_location("make_fixtures", ROOT / "scripts" / "make_fixtures.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["make_fixtures"] = mod          # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def _read(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, w.getnchannels())
    return x.T.astype(np.float64) / 32768.0


def build_take(path: Path, minutes: float, overlap: float, seed: int = 7) -> dict:
    """A long 4-track take from the fixture's deliveries; returns what it holds."""
    take = json.loads((SOUND / "manifest.json").read_text())["takes"][0]
    tracks = _read(SOUND / take["file"])
    clips = [(d["character"], tracks[d["channel"] - 1, int(d["start"] * SR): int(d["end"] * SR)])
             for d in take["deliveries"]]
    texts = [d["text"] for d in take["deliveries"]]
    rng = np.random.default_rng(seed)
    n = int(minutes * 60 * SR)
    voice = {"LEO": np.zeros(n), "MAYA": np.zeros(n)}
    cursor, k, speech, overlapped = int(0.5 * SR), 0, 0, 0
    while True:
        who, clip = clips[k % len(clips)]
        if cursor + len(clip) >= n:
            break
        voice[who][cursor: cursor + len(clip)] += clip
        DELIVERED.setdefault(texts[k % len(clips)], []).append((cursor / SR, (cursor + len(clip)) / SR))
        speech += len(clip)
        k += 1
        nxt = clips[k % len(clips)][1]
        if overlapped < overlap * (speech + len(nxt)) and len(nxt) > 0:
            back = int(min(len(clip), len(nxt)) * 0.5)          # the next line starts half-way into this one
            overlapped += back
            cursor += len(clip) - back
        else:
            cursor += len(clip) + int(rng.uniform(0.6, 1.2) * SR)
    bleed = 10 ** (-20 / 20)
    tone = lambda s: np.random.default_rng(s).standard_normal(n) * 10 ** (-58 / 20)  # noqa: E731
    boom = 0.6 * np.roll(voice["LEO"] + voice["MAYA"], int(0.004 * SR)) + tone(1)
    leo = voice["LEO"] + bleed * voice["MAYA"] + tone(2)
    maya = voice["MAYA"] + bleed * voice["LEO"] + tone(3)
    mix = 0.5 * boom + 0.4 * (leo + maya)
    out = np.stack([mix, boom, leo, maya])
    out *= 0.9 / max(1.0, np.abs(out).max())
    pcm = np.clip(np.round(out * 32767), -32768, 32767)
    _fixtures_module().write_poly_bwf(path, pcm, ["MIX", "BOOM", "LEO", "MAYA"], "10:00:00:00",
                                      Fraction(24000, 1001), SR)
    union = (voice["LEO"] != 0) | (voice["MAYA"] != 0)
    both = (voice["LEO"] != 0) & (voice["MAYA"] != 0)
    return {"seconds": n / SR, "speech_seconds": round(float(union.sum()) / SR, 1),
            "overlapped_share": round(float(both.sum()) / max(1, union.sum()), 3), "deliveries": k}


def index_once(path: Path, spec: str, speakers: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench_channels_") as tmp:
        cmd = [sys.executable, "-m", "cli.main", "index", str(path), "--index", tmp, "--no-visual",
               "--channels", spec] + ([] if speakers else ["--no-speakers"])
        t0 = time.monotonic()
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
        wall = time.monotonic() - t0
        if p.returncode != 0:
            sys.exit(f"bench_channels: `dailies index --channels {spec}` failed:\n{p.stderr[-2000:]}")
        st = subprocess.run([sys.executable, "-m", "cli.main", "status", "--index", tmp, "--json"], cwd=ROOT,
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        take = json.loads(st.stdout)["takes"][0]
        models = take.get("models") or {}
        timings = models.get("timings", {})
        found = 0
        for text, times in DELIVERED.items():        # each delivery found by `search line` (recall)
            q = subprocess.run([sys.executable, "-m", "cli.main", "search", "line", text, "--index", tmp, "--json",
                                "--limit", "200"], cwd=ROOT, capture_output=True, text=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
            hits = [h for h in json.loads(q.stdout or "[]") if (h.get("match") or 0) >= 0.6]
            found += sum(1 for a, b in times if any(h["start"] < b and h["end"] > a for h in hits))
    return {"wall": wall, "lines": take["n_lines"], "speech": timings.get("speech"),
            "speakers": timings.get("speakers"), "transcribed": models.get("transcribed_seconds"),
            "found": found}


DELIVERED: dict[str, list[tuple[float, float]]] = {}      # script text -> (start, end) of each delivery




def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--overlap", type=float, default=0.16, help="overlap budget; 0.16 makes about 20 %% of the "
                    "speech overlapped (the share is measured and printed)")
    ap.add_argument("--no-speakers", action="store_true")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_channels_take_") as tmp:
        take = Path(tmp) / "BENCH_POLY.wav"
        facts = build_take(take, args.minutes, args.overlap)
        print(f"take: {facts['seconds']:.0f} s, 4 tracks, {facts['speech_seconds']} s of speech, "
              f"{facts['overlapped_share']:.0%} of it overlapped, {facts['deliveries']} deliveries; "
              f"cpu cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
        best = {}
        for _ in range(args.repeat):
            for spec in ("mix", "auto"):
                r = index_once(take, spec, not args.no_speakers)
                if spec not in best or r["wall"] < best[spec]["wall"]:
                    best[spec] = r
        for spec in ("mix", "auto"):
            r = best[spec]
            print(f"--channels {spec:4}: index {r['wall']:6.1f} s  (speech {r['speech'] or 0:5.1f} s, speakers "
                  f"{r['speakers'] or 0:5.1f} s)  {r['lines']} lines, {r['found']}/{facts['deliveries']} deliveries "
                  f"found by `search line`  transcribed (s): {r['transcribed'] or 'the mix'}")
        ratio = best["auto"]["wall"] / best["mix"]["wall"]
        print(f"auto / mix index time: {ratio:.2f}x (goal <= 1.5x); speech step alone: "
              f"{(best['auto']['speech'] or 0) / max(1e-9, best['mix']['speech'] or 0):.2f}x")


if __name__ == "__main__":
    main()
