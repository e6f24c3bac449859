#!/usr/bin/env python
"""Script matching on real speech: share of delivered lines matched to the right script line.

A Fountain screenplay is built from a reference transcript with speakers (the pyannote sample's
``sample.stm``: consecutive turns of one speaker become one speech), with a decoy scene of unrelated
dialogue in front of it so that the take's scene must be found from what is said. The recording is
indexed with the real pipeline (``dailies index``: faster-whisper, line building), the screenplay is
imported (which matches every indexed take), and each reference speech is checked: is there a
delivery of *its* script line overlapping its time span? Prints that share (goal >= 0.97), the
deliveries that point at a wrong line, the start/end error of the right ones, and the time per take.

    uv run python scripts/eval_script_match.py [--eval ../shared/eval] [--whisper-model tiny.en] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DECOY = """INT. DINER - NIGHT #1#

Rain on the windows. MARGE refills a coffee for the only customer, HANK.

MARGE
You want pie with that, or are you just going to stare at the menu all night?

HANK
Cherry, if you have it. And a map of the county.

MARGE
The map is free. The pie will cost you.

"""


def read_stm(path: Path) -> list[tuple[str, float, float, str]]:
    out = []
    for line in path.read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6:
            out.append((parts[2], float(parts[3]), float(parts[4]), parts[5].strip()))
    return out


def speeches(turns: list[tuple[str, float, float, str]]) -> list[dict]:
    """Consecutive turns of one speaker -> one speech (as a screenplay writes them)."""
    out: list[dict] = []
    for spk, a, b, text in turns:
        if out and out[-1]["speaker"] == spk:
            out[-1]["end"] = b
            out[-1]["text"] += " " + text
        else:
            out.append({"speaker": spk, "start": a, "end": b, "text": text})
    return out


def fountain(refs: list[dict]) -> str:
    body = ["Title: Long Distance", "Credit: built from sample.stm by scripts/eval_script_match.py", "",
            DECOY, "INT. TWO KITCHENS, NEW JERSEY AND TEXAS - DAY #2#", "",
            "DIANE and SHEILA, strangers, on a conference line.", ""]
    for r in refs:
        body += [r["speaker"].upper(), r["text"], ""]
    return "\n".join(body)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    ap.add_argument("--whisper-model", default="tiny.en")
    ap.add_argument("--keep", type=Path, help="keep the work folder (index, script) here")
    args = ap.parse_args()
    sample = args.eval / "diarization" / "pyannote_sample"
    stm, wav = sample / "sample.stm", sample / "sample.wav"
    if not stm.exists() or not wav.exists():
        print(f"skip: {sample} is absent (real evaluation media from ../shared/eval)")
        return 0

    from indexer.script import catalog
    from indexer.store import Index

    work = Path(tempfile.mkdtemp(prefix="dailies-script-eval-"))
    try:
        refs = speeches(read_stm(stm))
        media = work / "media"
        media.mkdir()
        shutil.copy(wav, media / "phone_call.wav")          # no scene in the name: found from the dialogue
        script_path = work / "long_distance.fountain"
        script_path.write_text(fountain(refs))
        index = work / "index"
        dailies = str(Path(sys.executable).parent / "dailies")
        t0 = time.perf_counter()
        proc = subprocess.run([dailies, "index", str(media), "--index", str(index), "--whisper-model",
                               args.whisper_model, "--json"], capture_output=True, text=True)
        t_index = time.perf_counter() - t0
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1
        t0 = time.perf_counter()
        with Index.open_writer(index) as idx:
            res = catalog.import_script(idx, script_path)
        t_match = time.perf_counter() - t0
        script = res.script
        lines_scene2 = [ln for ln in script.lines if ln.scene_number == "2"]
        assert len(lines_scene2) == len(refs), (len(lines_scene2), len(refs))
        (tm,) = res.matched
        print(f"take {tm.name}: scene {tm.scene} ({tm.scene_source}), {len(tm.deliveries)} deliveries; "
              f"index {t_index:.1f} s, import+match {t_match:.2f} s for 1 take")
        right = 0
        errors_start, errors_end = [], []
        for ln, ref in zip(lines_scene2, refs):
            hits = [d for d in tm.deliveries if d.line_id == ln.line_id
                    and min(d.end, ref["end"]) - max(d.start, ref["start"]) > 0]
            ok = bool(hits)
            right += ok
            if ok:
                best = max(hits, key=lambda d: d.score)
                errors_start.append(abs(best.start - ref["start"]))
                errors_end.append(abs(best.end - ref["end"]))
            mark = "ok " if ok else "MISS"
            print(f"  {mark} {ln.line_id:5} {ln.character:7} {ref['start']:6.2f}-{ref['end']:6.2f}  "
                  + (f"{best.start:6.2f}-{best.end:6.2f} {best.score:.2f}  {best.diff}" if ok else ln.text))
        wrong = []
        for d in tm.deliveries:
            ref_i = max(range(len(refs)), key=lambda i: min(d.end, refs[i]["end"]) - max(d.start, refs[i]["start"]))
            if d.line_id != lines_scene2[ref_i].line_id:
                wrong.append(d)
        share = right / len(refs)
        print(f"\nlines delivered: {len(refs)}; matched to the right script line: {right} = {share:.3f} "
              f"(goal >= 0.97); deliveries pointing at a wrong line: {len(wrong)}")
        if errors_start:
            print(f"edge error vs the reference turns: start mean {sum(errors_start) / len(errors_start):.3f} s, "
                  f"end mean {sum(errors_end) / len(errors_end):.3f} s")
        print(json.dumps({"share_right_line": round(share, 4), "wrong_deliveries": len(wrong),
                          "index_seconds": round(t_index, 2), "match_seconds_per_take": round(t_match, 3)}))
        return 0 if share >= 0.97 else 1
    finally:
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            shutil.copytree(work, args.keep, dirs_exist_ok=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
