"""The picture path with a real open_clip model of tiny size and RANDOM weights, made here.

Random weights give meaningless text matches but honest plumbing: decode -> keyframes -> preprocess ->
embed -> store (Chroma) -> query. A still taken from shot k must find shot k first, because near-identical
pixels give near-identical vectors whatever the weights.
"""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
POPEYE = ROOT.parent / "shared" / "eval" / "film" / "popeye_showorder"
if not POPEYE.is_dir():
    POPEYE = Path("/work/shared/eval/film/popeye_showorder")

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

from indexer.media import extract_frame  # noqa: E402
from indexer.models.clip import KNOWN_PRETRAINED, ClipSource, model_rows, parse_clip_spec, resolve_clip  # noqa: E402
from indexer.picture.embedder import ClipEmbedder, embedder_for_index  # noqa: E402
from indexer.picture.search import VisualQuery, rerank_by_visual, search_visual, write_thumbnails  # noqa: E402
from indexer.picture.step import (PictureResult, PictureStep, frame_id, load_for_indexing,  # noqa: E402
                                  picture_of_take, store_frames)
from indexer.picture.tags import Tagger, load_vocabulary, tag_slug  # noqa: E402
from indexer.errors import DailiesError, ModelError, UsageError  # noqa: E402
from indexer.media import decode, probe  # noqa: E402
from indexer.shots import ShotDetector  # noqa: E402
from indexer.store import Index  # noqa: E402
from indexer.timecode import frames_to_tc  # noqa: E402

from conftest import make_random_clip_folder  # noqa: E402


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return make_random_clip_folder(tmp_path_factory.mktemp("clip") / "tiny-clip-RANDOM-WEIGHTS")


@pytest.fixture(scope="module")
def embedder(tiny_dir) -> ClipEmbedder:
    return ClipEmbedder(resolve_clip(checkpoint=tiny_dir), device="cpu", batch_size=8)


def index_picture(idx: Index, path: str, embedder, take_id: str, tagger=None):
    """The picture half of indexing one take, as the pipeline does it: one decoding pass feeding the
    shot detector and the keyframe sink, then frames to Chroma and the take to the catalog."""
    info = probe(path)
    detector = ShotDetector(info.rate)
    step = PictureStep(embedder, info.rate, take_id=take_id, detector=detector, tagger=tagger)
    decoded = decode(info, audio=False, sinks=[detector, step.sink])
    shots = detector.finish(decoded.frames)
    info.frames = decoded.frames
    result = step.finish(shots, decoded.frames)
    idx.upsert_take(take_id, take_id + "-hash", info, status="pending")
    store_frames(idx, take_id, info, result)
    idx.commit_take(take_id, info, shots, [], np.zeros((0, 256), dtype=np.float32),
                    models={"clip": result.settings()}, seconds=0.0)
    return info, shots, result


# ------------------------------------------------------------------------------------- weights

def test_missing_default_weights_say_which_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setenv("DAILIES_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(ModelError) as err:
        resolve_clip()
    msg = err.value.message
    assert "ViT-B-32" in msg and "laion2b_s34b_b79k" in msg
    assert str(tmp_path / "models" / "clip") in msg
    assert "dailies models fetch clip:ViT-B-32/laion2b_s34b_b79k" in msg and "--clip-checkpoint" in msg
    assert "\n" not in msg


def test_bad_checkpoints_and_names_are_one_sentence(tmp_path):
    with pytest.raises(ModelError, match="no such file"):
        resolve_clip(checkpoint=tmp_path / "nope.safetensors")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="open_clip_config.json"):
        resolve_clip(checkpoint=tmp_path / "empty")
    with pytest.raises(ModelError, match="Unknown CLIP architecture 'ViT-B-33'"):
        resolve_clip("ViT-B-33", "laion2b_s34b_b79k")
    with pytest.raises(ModelError, match="not a published weight set"):
        resolve_clip("ViT-B-32", "no_such_tag")
    assert parse_clip_spec("ViT-L-14/openai") == ("ViT-L-14", "openai")
    assert parse_clip_spec("") == ("ViT-B-32", "laion2b_s34b_b79k")


def test_checkpoint_file_for_a_named_architecture(tmp_path, tiny_dir):
    weights = tiny_dir / "open_clip_pytorch_model.bin"
    src = resolve_clip("ViT-B-32", checkpoint=weights)
    assert src.origin == "checkpoint file" and src.checkpoint == str(weights.resolve())
    with pytest.raises(ModelError, match="Cannot load CLIP model"):   # tiny weights do not fit ViT-B-32
        ClipEmbedder(src, device="cpu").embed_texts(["x"])


# ------------------------------------------------------------------------------------- the model

def test_embeddings_are_unit_vectors_and_deterministic(embedder):
    d = embedder.describe()
    assert d["dim"] == 64 and d["image_size"] == [64, 64] and len(d["sha256"]) == 64
    assert "tiny-clip-RANDOM-WEIGHTS" in d["name"]
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 255, (180, 320, 3), dtype=np.uint8), rng.integers(0, 255, (90, 60, 3), dtype=np.uint8)]
    a = embedder.embed_images(imgs)
    b = embedder.embed_images(imgs[:1])
    assert a.shape == (2, 64) and np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
    assert np.allclose(a[0], b[0], atol=1e-5)
    t = embedder.embed_texts(["a night exterior", "a close-up"])
    assert t.shape == (2, 64) and np.allclose(np.linalg.norm(t, axis=1), 1, atol=1e-5)
    # Frames are reduced to the model's input along the short side, never enlarged.
    assert embedder.frame_size(1920, 1080) == (114, 64)
    assert embedder.frame_size(48, 32) == (48, 32)


def test_preprocess_matches_open_clip_transform(embedder):
    """Our tensor path (frames already reduced by the decoder) agrees with open_clip's own PIL transform."""
    from PIL import Image

    rng = np.random.default_rng(1)
    img = (np.kron(rng.integers(0, 255, (9, 16, 3)), np.ones((20, 20, 1)))).astype(np.uint8)  # 180 x 320 blocks
    ours = embedder._prepare(img)
    transform = open_clip.image_transform(64, is_train=False)
    ref = transform(Image.fromarray(img))
    assert ours.shape == ref.shape
    assert float((ours - ref).abs().mean()) < 0.05


def test_vocabulary_default_custom_and_errors(tmp_path, embedder):
    voc = load_vocabulary()
    names = [g.name for g in voc.groups]
    assert {"place", "time", "framing"} <= set(names)
    assert {"int", "ext", "day", "night", "close-up", "medium", "wide"} <= {tag_slug(x) for x in voc.labels()}
    custom = tmp_path / "tags.toml"
    custom.write_text('[settings]\ntemplates = ["{}"]\n[weather]\nrain = ["rain"]\nsnow = ["snow", "a blizzard"]\n')
    v2 = load_vocabulary(custom)
    assert [g.name for g in v2.groups] == ["weather"] and v2.key() != voc.key()
    tags = Tagger(embedder, v2).tag(embedder.embed_images([np.zeros((64, 64, 3), np.uint8)]))
    assert len(tags[0]) == 1 and tags[0][0].label in ("rain", "snow") and 0.5 <= tags[0][0].score <= 1
    bad = tmp_path / "bad.toml"
    bad.write_text("[weather]\nrain = [\"rain\"]\n")
    with pytest.raises(UsageError, match="at least two labels"):
        load_vocabulary(bad)
    with pytest.raises(UsageError, match="no such tag vocabulary"):
        load_vocabulary(tmp_path / "missing.toml")


# ------------------------------------------------------------------------------------- end to end

def _fixture(name: str) -> Path:
    p = FIXTURES / "shoot" / name
    if not p.is_file():
        pytest.skip(f"fixture {p} is absent (run scripts/make_fixtures.py)")
    return p


def test_index_and_query_fixture_take(tmp_path, embedder):
    path = _fixture("12A_T4_CamC_MOS.mov")
    manifest = json.loads((FIXTURES / "manifest.json").read_text())
    truth = next(t for t in manifest["takes"] if t["name"] == "12A_T4_CamC_MOS")
    tagger = Tagger(embedder, load_vocabulary())
    with Index.open_writer(tmp_path / "idx") as idx:
        info, shots, result = index_picture(idx, str(path), embedder, "take4", tagger)
        assert [[s.first_frame, s.last_frame] for s in shots] == truth["shots"]
        # One record per embedded frame, ids deterministic, TC from the take's own clock.
        got = idx.vectors.get("frames", where={"take_id": "take4"})
        assert sorted(got["ids"]) == sorted(frame_id("take4", r.frame) for r in result.frames)
        rate = Fraction(truth["rate"])
        from indexer.timecode import tc_to_frames

        start = tc_to_frames(truth["start_tc"], rate)
        for meta in got["metadatas"]:
            assert meta["tc"] == frames_to_tc(start + meta["frame"], rate, True)
            assert abs(meta["seconds"] - meta["frame"] / float(rate)) < 1e-3
            assert truth["shots"][meta["shot"]][0] <= meta["frame"] <= truth["shots"][meta["shot"]][1]
        assert {r.shot for r in result.frames} == {0, 1, 2} and set(result.tags) == {0, 1, 2}
        # Redoing the take is an upsert: nothing duplicated.
        store_frames(idx, "take4", info, result)
        assert idx.vectors.count("frames") == len(result.frames)

        for s in shots:
            frame = (s.first_frame + s.last_frame) // 2 + 1            # not necessarily a keyframe
            still = extract_frame(str(path), frame)
            png = tmp_path / f"still{s.index}.png"
            from PIL import Image

            Image.fromarray(still).save(png)
            hits = search_visual(idx, VisualQuery(image=str(png), limit=3), embedder)
            assert hits[0].shot == s.index, [h.to_json() for h in hits]
            h = hits[0].to_json()
            assert h["kind"] == "visual" and h["take_id"] == "take4" and h["rate"] == truth["rate"]
            assert h["tc_in"] == frames_to_tc(start + s.first_frame, rate, True)
            assert h["tc_out"] == frames_to_tc(start + s.last_frame + 1, rate, True)
            assert h["frame_tc"] == frames_to_tc(start + h["frame"], rate, True)
            assert s.first_frame <= h["frame"] <= s.last_frame

        # Tag filter: only shots carrying that tag come back.
        tag = result.tags[1][0].slug
        tagged = search_visual(idx, VisualQuery(text="anything", tags=[tag], limit=10), embedder)
        assert tagged and all(tag in h.tags for h in tagged)
        assert {h.shot for h in tagged} == {k for k, ts in result.tags.items() if tag in [t.slug for t in ts]}

        # Thumbnails of the best frames.
        paths = write_thumbnails(tagged[:2], tmp_path / "thumbs", width=160)
        from PIL import Image

        assert all(Image.open(p).size[0] == 160 for p in paths)
        # Written again into the same folder: refused, nothing touched; --force overwrites.
        before = {p: os.stat(p).st_mtime_ns for p in paths}
        with pytest.raises(DailiesError, match="already exists; pass --force"):
            write_thumbnails(tagged[:2], tmp_path / "thumbs", width=120)
        assert {p: os.stat(p).st_mtime_ns for p in paths} == before
        assert all(Image.open(p).size[0] == 160 for p in paths)
        again_paths = write_thumbnails(tagged[:2], tmp_path / "thumbs", width=120, force=True)
        assert again_paths == paths and all(Image.open(p).size[0] == 120 for p in paths)

        # The model that made the vectors is found again from the index for queries.
        again = embedder_for_index(idx)
        assert again.name == embedder.name

        # Another model's vectors are refused in this index.
        other = ClipEmbedder(ClipSource.random_weights("ViT-B-32", seed=1))
        fake = PictureResult([], {}, {"name": other.name, "dim": 512}, "p", None)
        with pytest.raises(DailiesError, match="were made with"):
            store_frames(idx, "take4", info, fake)


def test_combined_rerank_marks_visual_scores(tmp_path, embedder):
    path = _fixture("12A_T4_CamC_MOS.mov")
    from indexer.records import Hit

    with Index.open_writer(tmp_path / "idx") as idx:
        info, shots, result = index_picture(idx, str(path), embedder, "take4")
        still = extract_frame(str(path), shots[2].first_frame + 20)
        hits = [Hit("line", str(path), "take4", info.name, None, None, None, s.start(info.rate), s.end(info.rate),
                    "", "", "30000/1001", f"line in shot {s.index}", 1.0 - 0.1 * s.index, shots=[s.index])
                for s in shots]
        ranked = rerank_by_visual(idx, hits, embedder, image=still)
        assert len(ranked) == 3 and all("visual" in h.rankers for h in ranked)
        best = max(ranked, key=lambda h: h.rankers["visual"])
        assert best.shots == [2]
        kept = rerank_by_visual(idx, hits, embedder, image=still, min_similarity=best.rankers["visual"] - 1e-6)
        assert [h.shots for h in kept] == [[2]]


@pytest.mark.slow
@pytest.mark.needs(POPEYE)
def test_popeye_stills_find_their_shot(tmp_path, embedder):
    """Popeye excerpts: HEVC in Matroska, 29.97 fps, no audio, a DVD subtitle stream, many cuts."""
    files = sorted(POPEYE.glob("popeye_vob_T0*.mkv"))
    assert files
    with Index.open_writer(tmp_path / "idx") as idx:
        total = correct = exact = 0
        for n, path in enumerate(files):
            take_id = f"popeye{n}"
            info, shots, result = index_picture(idx, str(path), embedder, take_id)
            assert info.subtitle_streams == 1 and not info.has_audio and info.rate == Fraction(30000, 1001)
            assert len(shots) >= 5
            for r in result.frames:
                assert shots[r.shot].first_frame <= r.frame <= shots[r.shot].last_frame
            metas = idx.vectors.get("frames", where={"take_id": take_id})["metadatas"]
            assert all(m["tc"] == frames_to_tc(m["frame"], info.rate, True) for m in metas)   # no TC: 00:00:00;00
            for s in shots:
                # A still of one of the shot's keyframes, at full size: shot k first, always.
                key = next(r.frame for r in result.frames if r.shot == s.index)
                q = VisualQuery(image=extract_frame(str(path), key), take_ids=[take_id], limit=1)
                hit = search_visual(idx, q, embedder)[0]
                assert (hit.shot, hit.frame) == (s.index, key)
                exact += 1
                # A still from the middle of the shot (usually not a keyframe): shot k first, nearly always
                # (a few Popeye shots share their background with the next shot).
                frame = (s.first_frame + s.last_frame) // 2 + 2
                q = VisualQuery(image=extract_frame(str(path), frame), take_ids=[take_id], limit=1)
                total += 1
                correct += search_visual(idx, q, embedder)[0].shot == s.index
        assert exact >= 30
        assert correct / total >= 0.9, f"{correct}/{total}"


def test_visual_only_redo_uses_catalog_shots_and_converts_only_planned_frames(tmp_path, embedder):
    path = _fixture("12A_T4_CamC_MOS.mov")
    from indexer.picture.keyframes import KeyframePolicy, plan_shot

    with Index.open_writer(tmp_path / "idx") as idx:
        info, shots, first = index_picture(idx, str(path), embedder, "take4")
        again = picture_of_take(idx, "take4", embedder)
        planned = sorted(f for s in shots for f in plan_shot(s.first_frame, s.last_frame, info.rate, KeyframePolicy()))
        assert [r.frame for r in again.frames] == planned
        assert again.converted == len(planned)
        got = idx.vectors.get("frames", where={"take_id": "take4"})
        assert sorted(got["ids"]) == [frame_id("take4", f) for f in planned]
        # Streaming (shots found in the same pass) lands within a grid step of the exact plan.
        assert len(first.frames) == len(planned)
        assert all(abs(a.frame - b.frame) <= 8 for a, b in zip(first.frames, again.frames))


def test_same_picture_reuses_the_vector(embedder):
    from indexer.picture.keyframes import Keyframe

    rng = np.random.default_rng(3)
    still = rng.integers(0, 255, (36, 64, 3)).astype(np.uint8)
    noisy = np.clip(still.astype(int) + rng.integers(-1, 2, still.shape), 0, 255).astype(np.uint8)
    moved = still.copy()
    moved[10:20, 20:30] = 255 - moved[10:20, 20:30]              # something moved in one corner of the picture
    step = PictureStep(embedder, Fraction(25), take_id="t")
    step._embed([Keyframe(0, still, "start"), Keyframe(50, noisy, "middle")])
    step._embed([Keyframe(100, noisy.copy(), "end"), Keyframe(150, moved, "every")])
    res = step.finish([], 200)
    assert step.reused == 2 and [r.frame for r in res.frames] == [0, 50, 100, 150]
    assert np.allclose(res.frames[0].vector, res.frames[2].vector)
    assert not np.allclose(res.frames[0].vector, res.frames[3].vector)


def test_missing_weights_mean_no_picture_step_not_a_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("DAILIES_MODELS", str(tmp_path / "models"))
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hf"))
    emb, tagger, message = load_for_indexing()
    assert emb is None and tagger is None and "dailies models fetch clip:" in message
    with pytest.raises(ModelError):
        load_for_indexing(checkpoint=tmp_path / "missing.bin")


class _Grab:
    """A FrameSink keeping full-size RGB copies of some frames of the decoding pass."""

    pixel_format = "rgb24"

    def __init__(self, want):
        self.want, self.got = set(want), {}

    def frame_size(self, w, h):
        return w, h

    def wants(self, k):
        return k in self.want

    def feed(self, k, img):
        self.got[k] = img.copy()


@pytest.mark.parametrize("name", ["12A_T2_CamA.mov", "12A_T3_CamB.mp4"])
def test_stills_are_the_frames_the_pass_numbered(name):
    """Thumbnails and query stills are found by seeking; they must be the very frame the index numbered."""
    path = _fixture(name)
    info = probe(str(path))
    want = sorted({0, 1, 23, 24, 250, 251, 599, info.frames - 1})
    grab = _Grab(want)
    decode(info, audio=False, sinks=[grab])
    for k in want:
        still = extract_frame(str(path), k)
        assert np.abs(still.astype(int) - grab.got[k].astype(int)).mean() < 0.5, k


def test_weights_fetched_into_the_model_cache_are_found_offline(tmp_path, monkeypatch):
    """`dailies models fetch clip:ViT-B-32/laion2b_s34b_b79k` leaves a Hugging Face cache layout in our
    model cache; resolving then finds the file without any network."""
    monkeypatch.setenv("DAILIES_MODELS", str(tmp_path / "models"))
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hf"))
    repo = tmp_path / "models" / "clip" / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    snap = repo / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "open_clip_model.safetensors").write_bytes(b"not really weights")
    src = resolve_clip()
    assert src.checkpoint == str(snap / "open_clip_model.safetensors")
    assert (src.model, src.pretrained, src.origin) == ("ViT-B-32", "laion2b_s34b_b79k", "model cache")
    rows = model_rows()
    assert rows[0]["status"] == "present" and len(rows[0]["sha256"]) == 64


def test_known_pretrained_table_is_open_clips_own():
    """The weights table that lets the default be found without importing open_clip says what open_clip
    says: the same hub repository and file (or URL) for every pair it lists."""
    for (model, tag), cfg in KNOWN_PRETRAINED.items():
        theirs = open_clip.get_pretrained_cfg(model, tag)
        assert theirs, (model, tag)
        assert model in open_clip.list_models()
        assert (cfg["hf_hub"], cfg["url"]) == (theirs.get("hf_hub", ""), theirs.get("url", "")), (model, tag)


def test_default_weights_resolve_without_importing_open_clip(tmp_path):
    """Finding (or missing) the default CLIP weights at the start of a run does not import open_clip
    (seconds of torchvision and timm for a run that may have no picture at all), and missing them does not
    import huggingface_hub's download module either (0.4 s) when no cache holds the repository."""
    import subprocess
    import sys

    code = ("import sys\nfrom indexer.models.clip import resolve_clip\nfrom indexer.errors import ModelError\n"
            "try:\n    resolve_clip()\nexcept ModelError as exc:\n    print(exc.message)\n"
            "print('open_clip' in sys.modules, 'huggingface_hub.file_download' in sys.modules)\n")
    env = {**os.environ, "DAILIES_MODELS": str(tmp_path / "models"), "HF_HUB_CACHE": str(tmp_path / "hf"),
           "HF_HOME": str(tmp_path / "hf-home")}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert "dailies models fetch clip:ViT-B-32/laion2b_s34b_b79k" in lines[0]
    assert lines[-1] == "False False"
