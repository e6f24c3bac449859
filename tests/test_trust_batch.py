"""A path named on the command line that cannot be read is that path's failure, never the batch's
(issue 20: it aborted the whole run, "unexpected error (OSError ...)", before anything was indexed).

As root (CI) a permission cannot be denied, so the path is one the system refuses to look at for
everyone: a name longer than the file system allows (ENAMETOOLONG), the same error path as a folder
above the file that the user may not enter (EACCES)."""

from __future__ import annotations

from pathlib import Path

from conftest import FIXTURES, run_cli
from indexer.pipeline import collect_files


def test_an_unreadable_named_path_fails_alone(tmp_path):
    bad = tmp_path / ("x" * 300 + ".mov")
    good = FIXTURES / "shoot" / "12A_WT1.wav"
    found, failed = collect_files([bad, good])
    assert found == [str(good)]
    assert [r.status for r in failed] == ["failed"]
    assert "cannot be read (File name too long)" in failed[0].message

    proc = run_cli("index", str(bad), str(FIXTURES / "broken" / "empty.mov"), "--index", str(tmp_path / "idx"),
                   "--no-speakers", "--no-visual")
    err = " ".join(proc.stderr.split())
    assert proc.returncode == 1, err
    assert "unexpected error" not in err
    assert "cannot be read (File name too long)" in err and "empty.mov: the file is empty" in err
    assert ": 2 failed" in err


def test_a_run_whose_files_all_fail_ends_after_the_model_load_it_started(tmp_path, monkeypatch):
    """The run starts loading the sound models beside its first file; when every file fails at once, it still
    waits for that load before it returns, so the process never exits under a native library's load (CI saw
    `dailies index` of two bad files abort at exit: "terminate called without an active exception")."""
    import threading
    import time

    from indexer.config import IndexSettings
    from indexer.pipeline import Indexer
    from indexer.store import Index

    loaded = threading.Event()

    def slow_load(self, _=None):
        time.sleep(1.0)                       # a load still going when the only file has failed
        loaded.set()

    monkeypatch.setattr(Indexer, "_load_sound_models", slow_load)
    with Index.open_writer(tmp_path / "idx") as idx:
        summary = Indexer(idx, IndexSettings(speakers=False)).run([FIXTURES / "broken" / "empty.mov"])
        assert loaded.is_set()
    assert [r.status for r in summary.results] == ["failed"]


def test_a_takes_speech_is_heard_while_the_last_takes_speakers_are_found(tmp_path, monkeypatch):
    """A local run hears a take on two threads: its speech on one, then its speakers and lines on the other. So
    the next take's speech runs while this take's speakers are found, one speaker step at a time, and the takes
    are committed in their order. Real models on two fixture takes; the wrappers only note the times (and hold
    the first take's speaker step a second, so that the overlap does not hang on the machine's speed)."""
    import threading
    import time

    from indexer.config import IndexSettings
    from indexer.pipeline import Indexer
    from indexer.store import Index

    events: dict[tuple[str, str], float] = {}
    lock = threading.Lock()
    real_speech, real_speakers = Indexer._hear_speech, Indexer._hear_speakers

    def note(what: str, p) -> None:
        with lock:
            events[(what, Path(p.path).name)] = time.monotonic()

    def speech(self, p):
        note("speech starts", p)
        try:
            return real_speech(self, p)
        finally:
            note("speech ends", p)

    def speakers(self, p, heard):
        note("speakers start", p)
        if not events.get(("held", "")):
            events[("held", "")] = 1.0
            time.sleep(1.0)
        try:
            real_speakers(self, p, heard)
        finally:
            note("speakers end", p)

    monkeypatch.setattr(Indexer, "_hear_speech", speech)
    monkeypatch.setattr(Indexer, "_hear_speakers", speakers)
    first, second = FIXTURES / "shoot" / "12A_WT1.wav", FIXTURES / "shoot" / "12A_T2_CamA.mov"
    with Index.open_writer(tmp_path / "idx") as idx:
        summary = Indexer(idx, IndexSettings(visual=False)).run([first, second])
        assert [(Path(r.path).name, r.status) for r in summary.results] == [(first.name, "indexed"),
                                                                            (second.name, "indexed")]
        assert all(r.lines > 0 for r in summary.results)
        assert idx.take_row(summary.results[1].take_id)["status"] == "indexed"
    a, b = first.name, second.name
    assert events[("speakers start", a)] >= events[("speech ends", a)]
    assert events[("speech starts", b)] < events[("speakers end", a)]       # the overlap
    assert events[("speakers start", b)] >= events[("speakers end", a)]     # one speaker step at a time
