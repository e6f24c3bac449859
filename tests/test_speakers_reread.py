"""The end-of-run re-read of every take against the others' voices, through the indexer, on real audio.

AMI dev01 and dev00 hold the same two men. Indexed dev01 first, dev01 has no other take to learn
from when it is filed, and its own diarization mixes the two men; the re-read at the end of the run
(when dev00's voices are known) attributes its lines again. Slow: two takes through faster-whisper
and pyannote on CPU. Skips when the weights or the media are absent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import need

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DAILIES_SHARED", ROOT.parent / "shared"))
AMI = SHARED / "eval" / "diarization" / "pyannote_debug_ami"

pytestmark = pytest.mark.slow


def _word_share_on_right_voice(idx, take_id: str, ref, person_of_voice: dict) -> float:
    """Share of the take's words (inside one reference speaker's turn) whose line voice is that speaker's."""
    single = ref.get_timeline().support().extrude(ref.get_overlap())
    right = total = 0
    for ln in idx.lines_of_take(take_id):
        for w in ln.words:
            mid = (w.start + w.end) / 2
            who = [p for seg, _, p in ref.crop(single).itertracks(yield_label=True) if seg.start <= mid < seg.end]
            if len(who) != 1:
                continue
            total += 1
            right += person_of_voice.get(ln.voice_id) == who[0]
    return right / max(total, 1)


def test_a_take_indexed_first_is_attributed_again_once_later_takes_are_known(tmp_path, monkeypatch):
    need(AMI / "dev00.wav"), need(AMI / "dev01.wav")
    from indexer.models import diarization

    try:
        diarization.resolve()
    except diarization.ModelMissingError:
        pytest.skip("diarization weights absent (run `dailies models fetch`)")
    from pyannote.database.util import load_rttm

    from indexer.config import IndexSettings
    from indexer.pipeline import Indexer
    from indexer.store import Index

    media = tmp_path / "media"
    media.mkdir()
    (media / "a_dev01.wav").symlink_to(AMI / "dev01.wav")      # indexed first: nothing to learn from yet
    (media / "b_dev00.wav").symlink_to(AMI / "dev00.wav")
    refs = load_rttm(str(AMI / "debug.development.rttm"))
    settings = IndexSettings(visual=False, threads=2)
    with Index.open_writer(tmp_path / "idx") as idx:
        summary = Indexer(idx, settings).run([media])
        assert summary.count("indexed") == 2 and summary.reread >= 1
        takes = {Path(r["path"]).name: r["take_id"] for r in idx.takes()}
        # each voice stands for the man it holds most of in dev00's words
        counts: dict[tuple[str, str], int] = {}
        for ln in idx.lines_of_take(takes["b_dev00.wav"]):
            for w in ln.words:
                mid = (w.start + w.end) / 2
                for seg, _, p in refs["dev00"].itertracks(yield_label=True):
                    if seg.start <= mid < seg.end:
                        counts[(ln.voice_id, p)] = counts.get((ln.voice_id, p), 0) + 1
        person = {}
        for (vid, p), n in sorted(counts.items(), key=lambda kv: kv[1]):
            person[vid] = p
        assert len(set(person.values())) == 2, counts
        share = _word_share_on_right_voice(idx, takes["a_dev01.wav"], refs["dev01"], person)
        assert share >= 0.85, share
        # the lines before any speaker split were kept for this (and the data of each line is whole)
        assert idx.get_step(takes["a_dev01.wav"], "lines", "1")
        for ln in idx.lines_of_take(takes["a_dev01.wav"]):
            assert ln.speaker and ln.voice_id and json.loads(ln.data_json)["words"]
        before = [(ln.line_id, ln.text, ln.voice_id) for t in takes.values() for ln in idx.lines_of_take(t)]

        # nothing new: the next run neither re-reads nor changes a line
        again = Indexer(idx, settings).run([media])
        assert again.count("unchanged") == 2 and again.reread == 0
        after = [(ln.line_id, ln.text, ln.voice_id) for t in takes.values() for ln in idx.lines_of_take(t)]
        assert after == before

        # the re-read failing never loses the run: a one-line warning, the lines as they were, and
        # the next run tries again
        from indexer.speakers import identity
        from indexer.pipeline import VOICES_STALE, NullReporter

        class Warned(NullReporter):
            said: list = []

            def warning(self, message):
                self.said.append(message)

        def broken(*a, **k):
            raise RuntimeError("disk full")

        monkeypatch.setattr(identity, "identify_all", broken)
        idx.set_meta(VOICES_STALE, "1")
        rep = Warned()
        third = Indexer(idx, settings, reporter=rep).run([media])
        assert third.count("unchanged") == 2 and third.reread == 0
        assert any("not re-read across takes" in m and "disk full" in m for m in rep.said), rep.said
        assert idx.meta(VOICES_STALE) == "1"
        assert [(ln.line_id, ln.text, ln.voice_id) for t in takes.values() for ln in idx.lines_of_take(t)] == before
