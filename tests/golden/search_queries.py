"""The searches the golden search test replays (tests/test_search_golden.py), and how a hit is compared.

The test indexes the fixture shoot and the broken files with the takes' sound steps (faster-whisper's words
and the diarization, ``sound_steps.json``) given beforehand, as a resumed run reuses them: the words and
voices are then the same on every machine. faster-whisper's int8 kernels differ between CPUs (AVX-512 or
AVX2 only), and so do a few words and word times; the golden file checks the search and the store, which
must give the same hits for the same words.

Record the expected hits (only when a change is *meant* to alter results, and say so in the commit):
    python tests/golden/search_queries.py INDEX > tests/golden/search_fixture_shoot.json
where INDEX is the fixture shoot and the broken files indexed with the default models and those sound steps
(what the test's ``golden_index`` fixture builds). The sound steps themselves, recorded once from an index made
with the default models (`dailies index fixtures/shoot fixtures/broken --index INDEX`):
    python tests/golden/search_queries.py --steps INDEX > tests/golden/sound_steps.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

LINE_QUERIES = [
    {"text": "We have to follow the data, not the calendar."},
    {"text": "Then she can have it when the sky cooperates."},
    {"text": "You're still here? It's almost three in the morning."},
    {"text": "the comet won't wait for office hours"},
    {"text": "the comet won't wait for office hours", "scene": "12A"},
    {"text": "calendar", "limit": 3},
    {"text": "nothing like this was ever said in any take zebra"},
]
SPEAKER_QUERIES = ["V001", "V002"]
SHOT_QUERIES = ["V001"]


def comparable(hit: dict) -> dict:
    """A hit as compared: the clip as its file name (the fixture folder differs per checkout), scores rounded."""
    out = {}
    for k, v in sorted(hit.items()):
        if k == "clip" and v:
            v = Path(v).name
        elif isinstance(v, float):
            v = round(v, 4)
        elif k == "rankers" and isinstance(v, dict):
            v = {a: round(b, 4) if isinstance(b, float) else b for a, b in sorted(v.items())}
        out[k] = v
    return out


def run_all(index) -> dict:
    from indexer.search import LineQuery, search_lines, search_speaker, search_speaker_shots

    out: dict = {"line": [], "speaker": [], "shots": []}
    for q in LINE_QUERIES:
        hits = search_lines(index, LineQuery(**q))
        out["line"].append({"query": q, "hits": [comparable(h.to_json()) for h in hits]})
    for ref in SPEAKER_QUERIES:
        out["speaker"].append({"query": ref, "hits": [comparable(h.to_json()) for h in search_speaker(index, ref)]})
    for ref in SHOT_QUERIES:
        out["shots"].append({"query": ref,
                             "hits": [comparable(h.to_json()) for h in search_speaker_shots(index, ref)]})
    return out


SOUND_STEPS = ("asr", "diarize")


def sound_steps(index) -> dict:
    """Every indexed take's sound steps: take id -> step -> [key, data]."""
    return {t.take_id: {k: list(v) for k, v in sorted(index.steps_of(t.take_id, SOUND_STEPS).items())}
            for t in sorted(index.takes(), key=lambda t: t.take_id)}


def seed(index, steps: dict) -> None:
    """Give a new index the recorded sound steps (its run reuses them, as a resumed run does)."""
    for take_id, by_step in steps.items():
        for step, (key, data) in by_step.items():
            index.put_step(take_id, step, key, data)


if __name__ == "__main__":
    from indexer.store import Index

    args = [a for a in sys.argv[1:] if a != "--steps"]
    with Index.open(args[0]) as idx:
        out = sound_steps(idx) if "--steps" in sys.argv else run_all(idx)
        print(json.dumps(out, indent=1, ensure_ascii=False, sort_keys=True))
