"""Visual search with REAL CLIP weights (on a user's machine): runs only when DAILIES_CLIP_CHECKPOINT
points at them (an open_clip checkpoint file for DAILIES_CLIP_MODEL, default ViT-B-32, or an open_clip
model folder); skipped otherwise. No weights can be downloaded on the project's CI machines.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

CHECKPOINT = os.environ.get("DAILIES_CLIP_CHECKPOINT")
ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT.parent / "shared" / "eval"
if not EVAL.is_dir():
    EVAL = Path("/work/shared/eval")
POPEYE = EVAL / "film" / "popeye_showorder"
LIVE_ACTION = [EVAL / "film" / "tears_of_steel" / "tos_opencast_speech_to_text_test.mp4",
               EVAL / "shots" / "lhotse_big_buck_bunny_small.mp4"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHECKPOINT, reason="DAILIES_CLIP_CHECKPOINT is not set (real CLIP weights needed)"),
    pytest.mark.needs(POPEYE),
]


def test_a_cartoon_sailor_finds_popeye(tmp_path):
    from indexer.models.clip import DEFAULT_MODEL, resolve_clip
    from indexer.picture.embedder import ClipEmbedder
    from indexer.picture.search import VisualQuery, search_visual
    from indexer.picture.step import PictureStep, store_frames
    from indexer.picture.tags import Tagger, load_vocabulary
    from indexer.media import decode, probe
    from indexer.shots import ShotDetector
    from indexer.store import Index

    source = resolve_clip(os.environ.get("DAILIES_CLIP_MODEL") or DEFAULT_MODEL, checkpoint=CHECKPOINT)
    embedder = ClipEmbedder(source)
    tagger = Tagger(embedder, load_vocabulary())
    popeye = sorted(POPEYE.glob("popeye_vob_T0*.mkv"))
    others = [p for p in LIVE_ACTION if p.is_file()]
    others += sorted((ROOT / "fixtures" / "shoot").glob("*.mov"))
    assert popeye and others
    names = {}
    with Index.open_writer(tmp_path / "idx") as idx:
        for n, path in enumerate(popeye + others):
            info = probe(str(path))
            det = ShotDetector(info.rate)
            step = PictureStep(embedder, info.rate, take_id=f"t{n}", detector=det, tagger=tagger)
            decoded = decode(info, audio=False, sinks=[det, step.sink])
            shots = det.finish(decoded.frames)
            info.frames = decoded.frames
            result = step.finish(shots, decoded.frames)
            idx.upsert_take(f"t{n}", f"h{n}", info, status="pending")
            store_frames(idx, f"t{n}", info, result)
            idx.commit_take(f"t{n}", info, shots, [], np.zeros((0, 256), np.float32), models={}, seconds=0.0)
            names[f"t{n}"] = path.name
        hits = search_visual(idx, VisualQuery(text="a cartoon sailor", limit=10), embedder)
        top = [names[h.take_id] for h in hits[:5]]
        assert all(name.startswith("popeye") for name in top), top
        # Zero-shot: most Popeye shots are tagged as animation, the live-action files are not.
        anim = search_visual(idx, VisualQuery(text="a cartoon", tags=["animation"], limit=200), embedder)
        share = np.mean([names[h.take_id].startswith("popeye") for h in anim])
        assert share >= 0.8, share
