"""Picture: open_clip embeddings of keyframes, visual search by text or image, zero-shot shot tags.

Models
  An open_clip architecture + pretrained tag (default ``ViT-B-32`` / ``laion2b_s34b_b79k``) found in the
  model cache (``dailies models fetch clip:ViT-B-32/laion2b_s34b_b79k`` puts it there, the only step that
  needs network) or in the Hugging Face cache open_clip itself uses; or a local checkpoint file
  (``--clip-checkpoint FILE``, weights for ``--clip-model``) or an open_clip folder (``open_clip_config.json``
  + weights). Nothing is ever downloaded while indexing or searching. :func:`resolve_clip` says in one
  sentence which model, where it looked and how to get it when the weights are absent.

Indexing (one take)
  :class:`PictureStep` puts a :class:`indexer.picture.keyframes.KeyframeSink` into the single decoding pass; its
  keyframes are embedded in batches as they are decided (pictures are dropped once embedded) and tagged
  per shot from an editable vocabulary (:func:`load_vocabulary`). :func:`store_frames` writes one record
  per embedded frame to the index's ``frames`` collection (id ``<take_id>-f<frame:07d>``; metadata
  take_id, shot, frame, seconds, tc, tags).

Searching
  :func:`search_visual` embeds a text and/or a still with the same model, finds the nearest frames and
  returns the best frame of each shot as a :class:`VisualHit` (a :class:`indexer.records.Hit` of kind
  ``visual`` with the shot, the best frame and its timecode). :func:`rerank_by_visual` combines a visual
  query with line hits.

torch and open_clip are imported inside the functions that use them.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import logging
import math
import os
import re
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..models.checksum import file_sha256

from ..config import models_dir
from ..errors import DailiesError, MediaError, ModelError, UsageError
from .keyframes import Keyframe, KeyframePolicy, KeyframeSink, shot_of
from ..records import Hit, Shot
from ..timecode import Clock

log = logging.getLogger(__name__)

DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = "laion2b_s34b_b79k"
COLLECTION = "frames"
META_KEY = "clip_frames"          # the full description of the model that made the index's frame vectors
DEFAULT_BATCH = 32
# Where open_clip publishes the default weights (its get_pretrained_cfg, checked by
# tests/test_vision_clip.py): finding them, or saying they are absent, needs no open_clip import,
# which costs seconds at the start of every index run (torchvision, timm).
KNOWN_PRETRAINED: dict[tuple[str, str], dict[str, str]] = {
    (DEFAULT_MODEL, DEFAULT_PRETRAINED): {"hf_hub": "laion/CLIP-ViT-B-32-laion2B-s34B-b79K/", "url": ""},
}
# A keyframe whose 32x18 grey thumbnail differs from the last embedded one's by less than this in every
# block (0..1) shows the same picture (locked-off camera, nothing moving): its vector is reused.
SAME_PICTURE = 0.02


# =============================================================================================
# Finding the weights
# =============================================================================================

@dataclass
class ClipSource:
    """Where a CLIP model's weights are on this machine."""

    model: str                  # open_clip architecture name ("ViT-B-32") or "local-dir:/abs/folder"
    pretrained: str | None      # the published tag the weights are (None for a file or folder)
    checkpoint: str | None      # the weights file (None only for random weights)
    origin: str                 # "model cache", "Hugging Face cache", "checkpoint file", "local folder", ...
    seed: int | None = None     # random weights (tests and benchmarks only; never for users' indexes)

    @property
    def random(self) -> bool:
        return self.seed is not None

    @classmethod
    def random_weights(cls, model: str = DEFAULT_MODEL, seed: int = 0) -> "ClipSource":
        """The architecture ``model`` with RANDOM weights: same compute cost, meaningless vectors.
        For benchmarks and plumbing tests only; its name says so everywhere it is recorded."""
        return cls(model, None, None, "RANDOM WEIGHTS (benchmark/test only)", seed=seed)


def clip_cache() -> Path:
    """Where ``dailies models fetch clip:...`` puts CLIP weights."""
    return models_dir() / "clip"


def parse_clip_spec(value: str | None) -> tuple[str, str | None]:
    """``"ViT-B-32/laion2b_s34b_b79k"`` -> (model, tag); ``""`` -> the defaults; ``"hf-hub:org/repo"``
    -> (that, None)."""
    value = (value or "").strip()
    if not value:
        return DEFAULT_MODEL, DEFAULT_PRETRAINED
    if value.startswith(("hf-hub:", "local-dir:")):
        return value, None
    model, sep, tag = value.partition("/")
    if not sep:
        model, sep, tag = value.partition(":")
    return model, (tag or None) if sep else (DEFAULT_PRETRAINED if model == DEFAULT_MODEL else None)


def _import_open_clip():
    try:
        with _quiet():
            import open_clip
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise ModelError(f"open_clip cannot be imported ({exc}); reinstall dailies with `uv sync`.") from None
    return open_clip


@contextlib.contextmanager
def _quiet():
    """open_clip logs on the root logger and torch warns on import; keep the CLI's stderr clean."""
    import warnings

    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


@contextlib.contextmanager
def _offline():
    """Make sure nothing reaches the network while models load (the hub is only used by `models fetch`)."""
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    saved = {k: os.environ.get(k) for k in keys}
    for k in keys:
        os.environ[k] = "1"
    try:
        import huggingface_hub.constants as hub_constants
    except ImportError:  # pragma: no cover
        hub_constants = None
    hub_saved = getattr(hub_constants, "HF_HUB_OFFLINE", None)
    if hub_constants is not None:
        hub_constants.HF_HUB_OFFLINE = True          # read at import time; the env var alone is too late
    try:
        yield
    finally:
        if hub_constants is not None:
            hub_constants.HF_HUB_OFFLINE = hub_saved
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _weights_in_dir(folder: Path) -> Path | None:
    preferred = ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors", "open_clip_pytorch_model.bin",
                 "open_clip_pytorch_model.pth", "model.safetensors", "pytorch_model.bin", "model.pth")
    for name in preferred:
        if (folder / name).is_file():
            return folder / name
    found = sorted([*folder.glob("*.safetensors"), *folder.glob("*.bin"), *folder.glob("*.pt"), *folder.glob("*.pth")])
    return found[0] if found else None


def _hub_file_candidates(hf_hub: str) -> tuple[str, list[str]]:
    """open_clip's ``org/repo/`` or ``org/repo/file`` -> (repo, file names to look for, safest first)."""
    repo, filename = os.path.split(hf_hub)
    filename = filename or "open_clip_pytorch_model.bin"
    names = [filename]
    if filename.endswith((".bin", ".pth")):
        names.insert(0, filename[:-4] + ".safetensors")
    if filename == "open_clip_pytorch_model.bin":
        names.insert(0, "open_clip_model.safetensors")
    return repo, names


def _find_in_hub_caches(repo: str, names: list[str]) -> str | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover
        return None
    for cache_dir in (str(clip_cache()), None):     # ours, then the Hugging Face default cache
        for name in names:
            try:
                hit = try_to_load_from_cache(repo_id=repo, filename=name, cache_dir=cache_dir)
            except Exception:
                hit = None
            if isinstance(hit, str) and os.path.isfile(hit):
                return hit
    return None


def _hf_cache_dir() -> str:
    try:
        from huggingface_hub.constants import HF_HUB_CACHE

        return str(HF_HUB_CACHE)
    except Exception:  # pragma: no cover
        return str(Path.home() / ".cache" / "huggingface" / "hub")


def resolve_clip(model: str | None = None, pretrained: str | None = None,
                 checkpoint: str | os.PathLike | None = None) -> ClipSource:
    """Find the CLIP weights on this machine (never downloads), or raise :class:`ModelError` with one
    sentence: which model, where it looked, and how to get it."""
    model = (model or DEFAULT_MODEL).strip()
    if checkpoint:
        path = Path(checkpoint).expanduser()
        if path.is_dir():
            if not (path / "open_clip_config.json").is_file():
                raise ModelError(f"CLIP checkpoint folder {path} has no open_clip_config.json; pass an open_clip "
                                 "model folder, or the weights file itself with --clip-model naming its architecture.")
            weights = _weights_in_dir(path)
            if weights is None:
                raise ModelError(f"CLIP checkpoint folder {path} has no weights file (.safetensors, .bin or .pt).")
            return ClipSource(f"local-dir:{path.resolve()}", None, str(weights.resolve()), "local folder")
        if not path.is_file():
            raise ModelError(f"CLIP checkpoint {path}: no such file; pass an open_clip checkpoint (.safetensors, "
                             f".bin or .pt) for {model}, or an open_clip model folder.")
        _check_architecture(model)
        return ClipSource(model, None, str(path.resolve()), "checkpoint file")
    if model.startswith("local-dir:"):
        return resolve_clip(model, None, model[len("local-dir:"):])
    if model.startswith("hf-hub:"):
        repo = model[len("hf-hub:"):]
        found = _find_in_hub_caches(repo, ["open_clip_model.safetensors", "open_clip_pytorch_model.safetensors",
                                           "open_clip_pytorch_model.bin"])
        if found is None:
            raise ModelError(
                f"CLIP model {model} is not on this machine (looked in {clip_cache()} and {_hf_cache_dir()}); "
                f"download it once with `dailies models fetch clip:{model}` (needs network), or pass a local "
                "checkpoint with --clip-checkpoint FILE.")
        return ClipSource(model, None, found, "Hugging Face cache")

    tag = pretrained or (DEFAULT_PRETRAINED if model == DEFAULT_MODEL else None)
    cfg = KNOWN_PRETRAINED.get((model, tag or ""))
    if cfg is None:                      # open_clip's own table (importing open_clip costs seconds)
        _check_architecture(model)
        if not tag:
            raise ModelError(f"Say which weights to use for CLIP model {model}: a pretrained tag (--clip-model "
                             f"{model}/TAG; `dailies models list` shows some) or --clip-checkpoint FILE.")
        open_clip = _import_open_clip()
        cfg = open_clip.get_pretrained_cfg(model, tag)
        if not cfg:
            tags = open_clip.list_pretrained_tags_by_model(model)
            raise ModelError(f"'{tag}' is not a published weight set for CLIP model {model} (known: "
                             f"{', '.join(tags) or 'none'}); or pass a local checkpoint with --clip-checkpoint FILE.")
    found = None
    looked = [str(clip_cache())]
    if cfg.get("hf_hub"):
        repo, names = _hub_file_candidates(cfg["hf_hub"])
        found = _find_in_hub_caches(repo, names)
        looked.append(_hf_cache_dir())
        origin = "Hugging Face cache"
    if found is None and cfg.get("url"):
        name = os.path.basename(cfg["url"])
        for folder in (clip_cache(), Path.home() / ".cache" / "clip"):
            if (folder / name).is_file():
                found = str(folder / name)
                break
        looked.append(str(Path.home() / ".cache" / "clip"))
        origin = "model cache"
    if found is None:
        raise ModelError(
            f"CLIP model {model} ({tag}) is not on this machine (looked in {' and '.join(dict.fromkeys(looked))}); "
            f"download it once with `dailies models fetch clip:{model}/{tag}` (needs network), or pass a local "
            "checkpoint with --clip-checkpoint FILE; indexing goes on without the picture step meanwhile.")
    if found.startswith(str(clip_cache())):
        origin = "model cache"
    return ClipSource(model, tag, found, origin)


def _check_architecture(model: str) -> None:
    if model.startswith(("local-dir:", "hf-hub:")):
        return
    open_clip = _import_open_clip()
    known = open_clip.list_models()
    if model not in known:
        close = difflib.get_close_matches(model, known, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ModelError(f"Unknown CLIP architecture '{model}'{hint}; `python -c \"import open_clip; "
                         f"print(open_clip.list_models())\"` lists them.")


def fetch_clip(spec: str | None = None) -> Path:
    """Download CLIP weights into the model cache (explicit; the only step that needs network)."""
    model, tag = parse_clip_spec(spec)
    open_clip = _import_open_clip()
    clip_cache().mkdir(parents=True, exist_ok=True)
    try:
        if model.startswith("hf-hub:"):
            from huggingface_hub import hf_hub_download
            from open_clip.pretrained import download_pretrained_from_hf

            repo = model[len("hf-hub:"):]
            hf_hub_download(repo, "open_clip_config.json", cache_dir=str(clip_cache()))
            return Path(download_pretrained_from_hf(repo, cache_dir=str(clip_cache())))
        _check_architecture(model)
        cfg = open_clip.get_pretrained_cfg(model, tag or "")
        if not cfg:
            raise ModelError(f"'{tag}' is not a published weight set for CLIP model {model} (known: "
                             f"{', '.join(open_clip.list_pretrained_tags_by_model(model)) or 'none'}).")
        return Path(open_clip.download_pretrained(cfg, cache_dir=str(clip_cache())))
    except DailiesError:
        raise
    except Exception as exc:
        raise ModelError(f"Could not download CLIP model {model} ({tag}) ({type(exc).__name__}: {exc}).") from None


def model_rows() -> list[dict]:
    """Rows for ``dailies models list``: the default CLIP and any weights in the model cache."""
    rows: list[dict] = []
    name = f"clip {DEFAULT_MODEL}/{DEFAULT_PRETRAINED}"
    try:
        src = resolve_clip()
        rows.append({"name": name, "role": "picture (default)", "status": "present", "path": src.checkpoint,
                     "origin": src.origin, "sha256": file_sha256(src.checkpoint)})
    except ModelError as exc:
        rows.append({"name": name, "role": "picture (default)", "status": "missing", "path": None,
                     "detail": exc.message})
    cache = clip_cache()
    if cache.is_dir():
        seen = {r["path"] for r in rows}
        for f in sorted([*cache.glob("**/*.safetensors"), *cache.glob("**/*.bin"), *cache.glob("**/*.pt")]):
            if str(f.resolve()) not in seen and str(f) not in seen:
                rows.append({"name": f"clip {f.parent.name}/{f.name}", "role": "picture", "status": "present",
                             "path": str(f), "origin": "model cache", "sha256": file_sha256(str(f))})
    return rows


# =============================================================================================
# The model
# =============================================================================================

class ClipEmbedder:
    """open_clip image and text towers, loaded on first use and kept for the whole run."""

    def __init__(self, source: ClipSource, *, device: str = "auto", batch_size: int = DEFAULT_BATCH,
                 threads: int = 0):
        self.source = source
        self.device_setting = device
        self.batch_size = max(1, int(batch_size))
        self.threads = threads
        self._model = None
        self._tokenizer = None
        self._device = None
        self._pp: dict[str, Any] = {}
        self._sha: str | None = None
        self._dim: int | None = None
        self.images_embedded = 0
        self.image_seconds = 0.0

    # ------------------------------------------------------------------ loading
    def _load(self):
        if self._model is not None:
            return self._model
        open_clip = _import_open_clip()
        import torch

        from ..config import torch_device

        device = torch_device(self.device_setting, "CLIP")
        if device == "cpu" and self.threads:
            torch.set_num_threads(self.threads)
        src = self.source
        try:
            with _quiet(), _offline():
                if src.random:
                    torch.manual_seed(src.seed)
                    model = open_clip.create_model(src.model, pretrained=None, device=device)
                elif src.model.startswith(("local-dir:", "hf-hub:")):
                    if src.model.startswith("hf-hub:"):
                        model = self._create_from_hub_file(open_clip, device)
                    else:
                        model = open_clip.create_model(src.model, device=device)
                else:
                    force_pp = None
                    if src.pretrained:
                        cfg = open_clip.get_pretrained_cfg(src.model, src.pretrained) or {}
                        force_pp = {k: cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in cfg}
                    model = open_clip.create_model(src.model, pretrained=src.checkpoint, device=device,
                                                   force_preprocess_cfg=force_pp)
                tok_name = src.model
                if src.model.startswith("hf-hub:"):
                    tok_name = f"local-dir:{Path(src.checkpoint).parent}"
                tokenizer = open_clip.get_tokenizer(tok_name)
        except DailiesError:
            raise
        except Exception as exc:
            where = src.checkpoint or src.model
            raise ModelError(f"Cannot load CLIP model {self.name} from {where} ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:200] if str(exc) else ''}).") from None
        model.eval()
        self._model, self._tokenizer, self._device = model, tokenizer, device
        pp = dict(open_clip.get_model_preprocess_cfg(model))
        size = pp.get("size", 224)
        pp["size"] = (size, size) if isinstance(size, int) else tuple(size)
        self._pp = pp
        return model

    def _create_from_hub_file(self, open_clip, device):
        """An ``hf-hub:`` model from files already in a cache (config beside the weights)."""
        folder = Path(self.source.checkpoint).parent
        cfg_path = folder / "open_clip_config.json"
        if not cfg_path.is_file():
            raise ModelError(f"CLIP model {self.source.model}: open_clip_config.json is not cached beside "
                             f"{self.source.checkpoint}; fetch it again with `dailies models fetch clip:{self.source.model}`.")
        return open_clip.create_model(f"local-dir:{folder}", device=device)

    @property
    def device(self) -> str:
        self._load()
        return self._device

    @property
    def image_size(self) -> tuple[int, int]:
        self._load()
        return self._pp["size"]

    @property
    def name(self) -> str:
        src = self.source
        if src.random:
            return f"open_clip {src.model} RANDOM-WEIGHTS seed {src.seed}"
        if src.pretrained:
            return f"open_clip {src.model} {src.pretrained}"
        label = Path(src.model[len('local-dir:'):]).name if src.model.startswith("local-dir:") else src.model
        return f"open_clip {label} sha256:{self.sha256[:16]}"

    @property
    def sha256(self) -> str | None:
        if self._sha is None and self.source.checkpoint:
            self._sha = file_sha256(self.source.checkpoint)
        return self._sha

    @property
    def dim(self) -> int:
        model = self._load()
        if self._dim is None:
            out = getattr(getattr(model, "visual", None), "output_dim", None)
            self._dim = int(out) if out else int(self.embed_texts(["a"]).shape[1])
        return self._dim

    def describe(self) -> dict:
        """For the catalog: the model, its weights and how frames are prepared."""
        import open_clip

        self._load()
        return {
            "name": self.name, "dim": self.dim, "library": "open_clip", "version": open_clip.__version__,
            "model": self.source.model, "pretrained": self.source.pretrained,
            "checkpoint": self.source.checkpoint, "sha256": self.sha256, "origin": self.source.origin,
            "random_seed": self.source.seed, "device": self._device, "image_size": list(self._pp["size"]),
            "resize_mode": self._pp.get("resize_mode"),
        }

    # ------------------------------------------------------------------ pictures
    def frame_size(self, width: int, height: int) -> tuple[int, int]:
        """The size decoded frames should be reduced to before preprocessing (the model's input size
        along the side its resize keeps; never enlarged)."""
        sh, sw = self.image_size
        mode = self._pp.get("resize_mode", "shortest")
        if mode == "squash":
            return (min(width, sw), min(height, sh))
        if mode == "longest":
            scale = min(sw / width, sh / height)
        else:
            scale = max(sw / width, sh / height)
        if scale >= 1.0:
            return width, height
        return max(1, int(round(width * scale))), max(1, int(round(height * scale)))

    def _prepare(self, image: np.ndarray):
        """H x W x 3 uint8 RGB -> normalised 3 x S x S tensor, as open_clip's own transform does
        (resize keeping the aspect ratio, centre crop; or squash / pad by the model's resize mode)."""
        import torch
        import torch.nn.functional as F

        if image.ndim != 3 or image.shape[2] != 3:
            raise MediaError(f"a picture for CLIP must be H x W x 3 RGB, got shape {tuple(image.shape)}.")
        sh, sw = self._pp["size"]
        h, w = image.shape[:2]
        if not image.flags.writeable or not image.flags.c_contiguous:
            image = np.array(image, copy=True, order="C")
        t = torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
        mode = self._pp.get("resize_mode", "shortest")
        if mode == "squash":
            nh, nw = sh, sw
        elif mode == "longest":
            scale = min(sh / h, sw / w)
            nh, nw = max(1, int(h * scale)), max(1, int(w * scale))
        else:   # torchvision Resize(int) semantics: the short side becomes S, the long side is truncated
            if h <= w:
                nh, nw = sh, int(sh * w / h)
            else:
                nh, nw = int(sw * h / w), sw
        if (nh, nw) != (h, w):
            interp = "bilinear" if self._pp.get("interpolation") == "bilinear" else "bicubic"
            t = F.interpolate(t, size=(nh, nw), mode=interp, antialias=True, align_corners=False).clamp_(0, 1)
        if mode == "longest":
            fill = float(self._pp.get("fill_color", 0)) / 255.0
            canvas = torch.full((1, 3, sh, sw), fill)
            top, left = (sh - nh) // 2, (sw - nw) // 2
            canvas[:, :, top:top + nh, left:left + nw] = t
            t = canvas
        else:
            top = int(round((nh - sh) / 2.0))
            left = int(round((nw - sw) / 2.0))
            t = t[:, :, max(0, top):max(0, top) + sh, max(0, left):max(0, left) + sw]
            if t.shape[-2:] != (sh, sw):   # smaller than the input size: pad like torchvision's CenterCrop
                t = F.pad(t, (0, sw - t.shape[-1], 0, sh - t.shape[-2]))
        mean = torch.tensor(self._pp["mean"]).view(1, 3, 1, 1)
        std = torch.tensor(self._pp["std"]).view(1, 3, 1, 1)
        return ((t - mean) / std)[0]

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(N, dim) float32 unit vectors of RGB pictures (any size), in batches."""
        model = self._load()
        if not len(images):
            return np.zeros((0, self.dim), dtype=np.float32)
        import torch

        t0 = time.perf_counter()
        out = []
        for i in range(0, len(images), self.batch_size):
            x = torch.stack([self._prepare(im) for im in images[i:i + self.batch_size]]).to(self._device)
            with torch.inference_mode(), self._autocast():
                v = model.encode_image(x, normalize=True)
            out.append(v.float().cpu().numpy())
        self.images_embedded += len(images)
        self.image_seconds += time.perf_counter() - t0
        return _unit(np.concatenate(out))

    def embed_image_file(self, path: str | os.PathLike) -> np.ndarray:
        """(dim,) unit vector of a still (PNG, JPEG, TIFF ...)."""
        return self.embed_images([read_image(path)])[0]

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(N, dim) float32 unit vectors of texts (CLIP's text tower)."""
        model = self._load()
        import torch

        if not len(texts):
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        for i in range(0, len(texts), 256):
            tokens = self._tokenizer(list(texts[i:i + 256])).to(self._device)
            with torch.inference_mode(), self._autocast():
                v = model.encode_text(tokens, normalize=True)
            out.append(v.float().cpu().numpy())
        return _unit(np.concatenate(out))

    @property
    def logit_scale(self) -> float:
        model = self._load()
        scale = getattr(model, "logit_scale", None)
        if scale is None:
            return 100.0
        return float(min(100.0, math.exp(float(scale.detach().float().cpu().reshape(-1)[0]))))

    def _autocast(self):
        import torch

        if self._device and self._device.startswith("cuda"):
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return (v / np.maximum(n, 1e-12)).astype(np.float32)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """A still as H x W x 3 uint8 RGB (EXIF orientation applied)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise MediaError(f"{path}: no such image file.") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise MediaError(f"{path}: not a picture that can be read ({exc}).") from None


# =============================================================================================
# Zero-shot tags
# =============================================================================================

DEFAULT_VOCABULARY = """\
# dailies zero-shot shot tags (CLIP). Edit freely and pass the file with --tag-vocabulary FILE.
# Each table is one question asked of every shot: the shot gets the ONE label of the table whose
# prompts its frames match best (if that label's confidence reaches min_confidence). A label is what
# `--tag LABEL` filters on; its prompts describe it in plain words. "{}" in a template is replaced by
# each prompt, and a label's vector is the mean of all its prompts in all the templates.

[settings]
templates = ["a film still of {}.", "a photo of {}.", "{}."]
min_confidence = 0.0

[place]
INT = ["an interior", "a room inside a building", "an indoor scene"]
EXT = ["an exterior", "the outdoors", "an outdoor scene under the open sky"]

[time]
DAY = ["daytime", "a scene in daylight", "a bright sunny day"]
NIGHT = ["night time", "a dark night scene", "a scene at night lit by lamps"]

[framing]
close-up = ["a close-up of a face", "a close-up shot", "an extreme close-up of a detail"]
medium = ["a medium shot of a person from the waist up", "a medium shot"]
wide = ["a wide shot", "a wide establishing shot of a landscape", "a full shot of people in a place"]

[people]
no-people = ["an empty place with no people", "a scene without any person"]
one-person = ["one person", "a single person alone"]
two-people = ["two people", "a conversation between two people"]
group = ["a group of people", "a crowd"]

[look]
live-action = ["a live-action movie scene", "a real photograph"]
animation = ["a cartoon", "an animated film", "a drawing"]

[color]
color = ["a color image", "a colorful scene"]
black-and-white = ["a black and white image", "a monochrome film"]
"""


@dataclass
class TagGroup:
    name: str
    labels: dict[str, list[str]]          # label -> prompts


@dataclass
class Vocabulary:
    groups: list[TagGroup]
    templates: list[str] = field(default_factory=lambda: ["{}"])
    min_confidence: float = 0.0
    source: str = "built-in"

    def key(self) -> str:
        """Identifies the vocabulary's content (recorded with each take; changed vocabulary -> re-tag)."""
        blob = json.dumps([self.templates, self.min_confidence, [asdict(g) for g in self.groups]], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def labels(self) -> list[str]:
        return [lab for g in self.groups for lab in g.labels]


def tag_slug(label: str) -> str:
    """How a label is matched and stored: lower case, runs of other characters as '-' ("Close Up" ->
    "close-up")."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def load_vocabulary(path: str | os.PathLike | None = None) -> Vocabulary:
    """The tag vocabulary from a TOML or JSON file (see :data:`DEFAULT_VOCABULARY`), or the built-in one."""
    if path is None:
        import tomllib

        return _vocabulary_from(tomllib.loads(DEFAULT_VOCABULARY), "built-in")
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{p}: no such tag vocabulary file.") from None
    except OSError as exc:
        raise UsageError(f"{p}: cannot be read ({exc.strerror}).") from None
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import tomllib

            data = tomllib.loads(text)
    except (ValueError, json.JSONDecodeError) as exc:
        raise UsageError(f"{p}: not a valid tag vocabulary ({str(exc).splitlines()[0]}).") from None
    return _vocabulary_from(data, str(p))


def _vocabulary_from(data: Any, where: str) -> Vocabulary:
    if not isinstance(data, dict):
        raise UsageError(f"{where}: a tag vocabulary is a table of questions, each a table of label = [prompts].")
    settings = data.get("settings", {}) or {}
    templates = settings.get("templates", ["{}"])
    if isinstance(templates, str):
        templates = [templates]
    if not templates or not all(isinstance(t, str) and "{}" in t for t in templates):
        raise UsageError(f"{where}: settings.templates must be a list of texts each containing {{}}.")
    try:
        min_conf = float(settings.get("min_confidence", 0.0))
    except (TypeError, ValueError):
        raise UsageError(f"{where}: settings.min_confidence must be a number between 0 and 1.") from None
    groups: list[TagGroup] = []
    seen: dict[str, str] = {}
    for gname, table in data.items():
        if gname == "settings":
            continue
        if not isinstance(table, dict) or len(table) < 2:
            raise UsageError(f"{where}: [{gname}] must list at least two labels, each label = [\"prompt\", ...].")
        labels: dict[str, list[str]] = {}
        for label, prompts in table.items():
            if isinstance(prompts, str):
                prompts = [prompts]
            if not isinstance(prompts, list) or not prompts or not all(isinstance(x, str) and x.strip()
                                                                      for x in prompts):
                raise UsageError(f"{where}: label '{label}' in [{gname}] needs a list of prompts (texts).")
            slug = tag_slug(label)
            if not slug:
                raise UsageError(f"{where}: label '{label}' in [{gname}] has no letters or digits.")
            if slug in seen:
                raise UsageError(f"{where}: label '{label}' appears in both [{seen[slug]}] and [{gname}].")
            seen[slug] = gname
            labels[str(label)] = [x.strip() for x in prompts]
        groups.append(TagGroup(str(gname), labels))
    if not groups:
        raise UsageError(f"{where}: the tag vocabulary has no questions (tables of labels).")
    return Vocabulary(groups, list(templates), min_conf, where)


@dataclass
class ShotTag:
    group: str
    label: str
    score: float                           # softmax confidence within the group (0..1)

    @property
    def slug(self) -> str:
        return tag_slug(self.label)


class Tagger:
    """Zero-shot classifier: one text vector per label (mean over prompts x templates), built once."""

    def __init__(self, embedder: ClipEmbedder, vocabulary: Vocabulary):
        self.vocabulary = vocabulary
        self.scale = embedder.logit_scale
        self._groups: list[tuple[TagGroup, list[str], np.ndarray]] = []
        for g in vocabulary.groups:
            names = list(g.labels)
            rows = []
            for label in names:
                texts = [t.format(p) for p in g.labels[label] for t in vocabulary.templates]
                rows.append(embedder.embed_texts(texts).mean(axis=0))
            self._groups.append((g, names, _unit(np.stack(rows))))

    def tag(self, vectors: np.ndarray) -> list[list[ShotTag]]:
        """Tags for each row of ``vectors`` (unit image vectors; a shot's mean frame vector)."""
        out: list[list[ShotTag]] = [[] for _ in range(len(vectors))]
        if not len(vectors):
            return out
        v = _unit(vectors)
        for g, names, w in self._groups:
            logits = self.scale * (v @ w.T)
            logits -= logits.max(axis=1, keepdims=True)
            p = np.exp(logits)
            p /= p.sum(axis=1, keepdims=True)
            best = p.argmax(axis=1)
            for i, b in enumerate(best):
                if p[i, b] >= self.vocabulary.min_confidence:
                    out[i].append(ShotTag(g.name, names[b], float(p[i, b])))
        return out


# =============================================================================================
# The picture step of one take
# =============================================================================================

@dataclass
class FrameRecord:
    """One embedded frame, as stored (the lead computes TC from the take's Clock; store_frames does)."""

    take_id: str
    shot: int
    frame: int
    seconds: float
    vector: np.ndarray
    reason: str = ""

    @property
    def id(self) -> str:
        return frame_id(self.take_id, self.frame)


def frame_id(take_id: str, frame: int) -> str:
    return f"{take_id}-f{frame:07d}"


@dataclass
class PictureResult:
    frames: list[FrameRecord]
    tags: dict[int, list[ShotTag]]         # shot index -> tags
    model: dict                            # ClipEmbedder.describe()
    policy: str                            # KeyframePolicy.key()
    vocabulary: str | None                 # Vocabulary.key()
    converted: int = 0                     # pictures converted for the keyframe sink
    embed_seconds: float = 0.0
    reused: int = 0                        # keyframes that showed the same picture as the one before

    def settings(self) -> dict:
        """What to record in the take's ``models`` (catalog) under "clip"."""
        return {**self.model, "keyframes": self.policy, "vocabulary": self.vocabulary, "frames": len(self.frames),
                "same_picture": SAME_PICTURE}


class PictureStep:
    """The picture step of one take, riding the single decoding pass.

    Usage (the detector must come before ``step.sink`` so the sink sees each cut as it is found)::

        step = PictureStep(embedder, info.rate, detector=detector, take_id=take_id)
        decoded = decode(info, sinks=[detector, step.sink])
        shots = detector.finish(decoded.frames)
        result = step.finish(shots, decoded.frames)

    With shots known before the pass (resume, ``--visual-only``) pass ``shots=`` instead of ``detector``.
    """

    def __init__(self, embedder: ClipEmbedder, rate: Fraction, *, take_id: str = "",
                 policy: KeyframePolicy | None = None, detector=None, shots: list[Shot] | None = None,
                 tagger: Tagger | None = None, same_picture: float = SAME_PICTURE):
        self.embedder = embedder
        self.rate = Fraction(rate)
        self.take_id = take_id
        self.policy = policy or KeyframePolicy()
        self.tagger = tagger
        self.same_picture = same_picture
        self._frames: list[tuple[int, str]] = []
        self._vectors: list[np.ndarray] = []
        self._ref: tuple[np.ndarray, np.ndarray] | None = None     # (signature, vector) of the last embedded
        self.reused = 0
        self.embed_seconds = 0.0
        embedder._load()
        self.sink = KeyframeSink(self.rate, frame_size=embedder.frame_size, policy=self.policy, detector=detector,
                                 shots=shots, on_frames=self._embed, batch=embedder.batch_size)

    @staticmethod
    def _signature(image: np.ndarray) -> np.ndarray:
        """A 32 x 18 grey thumbnail (block means, 0..1): what "the same picture" is judged on."""
        h, w = image.shape[:2]
        ys = np.unique(np.linspace(0, h, 19).astype(int))
        xs = np.unique(np.linspace(0, w, 33).astype(int))
        grey = image.mean(axis=2, dtype=np.float32)
        rows = np.add.reduceat(grey, ys[:-1], axis=0) / np.maximum(np.diff(ys), 1)[:, None]
        return (np.add.reduceat(rows, xs[:-1], axis=1) / np.maximum(np.diff(xs), 1)[None, :]) / 255.0

    def _embed(self, keyframes: list[Keyframe]) -> None:
        """Embed a batch of keyframes; a keyframe showing the same picture as the last embedded one
        (locked-off shot, nothing moving) reuses its vector instead of running the model again."""
        if not keyframes:
            return
        t0 = time.perf_counter()
        keyframes = sorted(keyframes, key=lambda k: k.frame)
        ref = self._ref
        plan: list[int] = []               # per keyframe: index into `fresh`, or -1 = the previous reference
        fresh: list[np.ndarray] = []
        ref_sig, ref_src = (ref[0], -1) if ref is not None else (None, None)
        for k in keyframes:
            sig = self._signature(k.image)
            if ref_sig is not None and sig.shape == ref_sig.shape \
                    and float(np.abs(sig - ref_sig).max()) < self.same_picture:
                plan.append(ref_src)
                self.reused += 1
            else:
                plan.append(len(fresh))
                fresh.append(k.image)
                ref_sig, ref_src = sig, len(fresh) - 1
        vecs = self.embedder.embed_images(fresh) if fresh else np.zeros((0, 0), dtype=np.float32)
        rows = [vecs[j] if j >= 0 else ref[1] for j in plan]
        self._ref = (ref_sig, vecs[ref_src] if ref_src is not None and ref_src >= 0 else ref[1])
        self.embed_seconds += time.perf_counter() - t0
        for k in keyframes:
            self._frames.append((k.frame, k.reason))
            k.image = None                 # the picture is no longer needed
        self._vectors.append(np.stack(rows))

    def finish(self, shots: list[Shot], total_frames: int | None = None) -> PictureResult:
        self._embed(self.sink.finish(shots, total_frames))
        firsts = [s.first_frame for s in shots]
        vectors = np.concatenate(self._vectors) if self._vectors else np.zeros((0, 0), dtype=np.float32)
        order = sorted(range(len(self._frames)), key=lambda i: self._frames[i][0])
        records = [FrameRecord(self.take_id, shot_of(firsts, self._frames[i][0]), self._frames[i][0],
                               float(Fraction(self._frames[i][0]) / self.rate), vectors[i], self._frames[i][1])
                   for i in order]
        tags: dict[int, list[ShotTag]] = {}
        if self.tagger is not None and records:
            by_shot: dict[int, list[np.ndarray]] = {}
            for r in records:
                by_shot.setdefault(r.shot, []).append(r.vector)
            keys = sorted(by_shot)
            means = np.stack([np.mean(by_shot[k], axis=0) for k in keys])
            for k, t in zip(keys, self.tagger.tag(means)):
                tags[k] = t
        return PictureResult(records, tags, self.embedder.describe(), self.policy.key(),
                             self.tagger.vocabulary.key() if self.tagger else None,
                             converted=self.sink.converted, embed_seconds=self.embed_seconds, reused=self.reused)


def load_for_indexing(model: str | None = None, pretrained: str | None = None,
                      checkpoint: str | os.PathLike | None = None, *, device: str = "auto",
                      batch_size: int = DEFAULT_BATCH, threads: int = 0,
                      vocabulary: str | os.PathLike | None = None) -> tuple[ClipEmbedder | None, Tagger | None, str | None]:
    """For the start of an index run: (embedder, tagger, None), or (None, None, the one sentence to show
    once) when the weights are absent, so indexing goes on without the picture step. A bad vocabulary
    file or a broken checkpoint still raises."""
    try:
        source = resolve_clip(model, pretrained, checkpoint)
    except ModelError as exc:
        if checkpoint:
            raise
        return None, None, exc.message
    embedder = ClipEmbedder(source, device=device, batch_size=batch_size, threads=threads)
    tagger = Tagger(embedder, load_vocabulary(vocabulary))
    return embedder, tagger, None


def picture_of_take(index, take_id: str, embedder: ClipEmbedder, *, tagger: Tagger | None = None,
                    policy: KeyframePolicy | None = None, progress=None) -> PictureResult:
    """The picture step alone for a take already indexed (``--visual-only``): its shots come from the
    catalog, so only the planned keyframes are converted; no sound is decoded and nothing is redone.
    Stores the frame vectors; returns the result (tags for the catalog, settings for ``models``)."""
    from ..media import decode
    from ..records import MediaInfo

    row = index.take_row(take_id)
    if row is None:
        raise UsageError(f"No take {take_id} in the index {index.path}.")
    info = MediaInfo.from_json(json.loads(row["info"]))
    if not info.has_video:
        return PictureResult([], {}, embedder.describe(), (policy or KeyframePolicy()).key(),
                             tagger.vocabulary.key() if tagger else None)
    shots = index.shots(take_id)
    total = int(row["frames"] or info.frames or 0)
    if not shots and total:
        shots = [Shot(0, 0, total - 1)]
    step = PictureStep(embedder, info.rate, take_id=take_id, policy=policy, shots=shots, tagger=tagger)
    decoded = decode(info, audio=False, sinks=[step.sink], progress=progress)
    result = step.finish(shots, decoded.frames or total or None)
    store_frames(index, take_id, info, result)
    return result


# =============================================================================================
# Storing and searching (the index's ``frames`` collection)
# =============================================================================================

def _tag_key(slug: str) -> str:
    return f"tag_{slug.replace('-', '_')}"


def store_frames(index, take_id: str, info_or_clock, result: PictureResult) -> int:
    """Write one take's frame vectors to the ``frames`` collection (replacing any earlier ones of that
    take; ids are deterministic, so a redo is an upsert). Call before the take's catalog commit.
    ``info_or_clock`` is the take's MediaInfo or its Clock. Returns the number of records."""
    clock: Clock = info_or_clock if isinstance(info_or_clock, Clock) else info_or_clock.clock
    index.check_embedder(COLLECTION, result.model)
    if index.meta(META_KEY) is None:
        index.set_meta(META_KEY, json.dumps({k: v for k, v in result.model.items() if k != "device"}))
    recs = result.frames
    if not recs:
        index.vectors.delete_take(COLLECTION, take_id)
        return 0
    ids, vecs, metas = [], [], []
    for r in recs:
        tags = result.tags.get(r.shot, [])
        meta: dict[str, Any] = {"take_id": take_id, "shot": int(r.shot), "frame": int(r.frame),
                                "seconds": round(float(r.seconds), 4), "tc": clock.tc(r.frame), "reason": r.reason,
                                "tags": ",".join(t.slug for t in tags)}
        for t in tags:
            meta[_tag_key(t.slug)] = True
        ids.append(frame_id(take_id, r.frame))
        vecs.append(np.asarray(r.vector, dtype=np.float32))
        metas.append(meta)
    index.vectors.replace_take(COLLECTION, take_id, ids, np.stack(vecs), metas)
    return len(ids)


def delete_frames(index, take_id: str) -> None:
    index.vectors.delete_take(COLLECTION, take_id)


def shot_tag_rows(take_id: str, result: PictureResult) -> list[tuple[str, int, str, str, float]]:
    """Rows for the catalog table ``shot_tags(take_id, shot, grp, label, score)`` (see the report)."""
    return [(take_id, shot, t.group, t.label, round(t.score, 4))
            for shot, tags in sorted(result.tags.items()) for t in tags]


_EMBEDDERS: dict[tuple, ClipEmbedder] = {}


def embedder_for_index(index, *, checkpoint: str | os.PathLike | None = None, device: str = "auto") -> ClipEmbedder:
    """The CLIP model that made the index's frame vectors, loaded for queries (text or image).
    ``checkpoint`` points at its weights when they moved; a different model is refused."""
    raw = index.meta(META_KEY)
    if raw is None:
        raise UsageError(f"The index {index.path} has no picture vectors yet; index with CLIP weights present "
                         "(`dailies models fetch clip:ViT-B-32/laion2b_s34b_b79k` or --clip-checkpoint FILE), "
                         "then `dailies index --visual-only FOLDER`.")
    desc = json.loads(raw)
    if desc.get("random_seed") is not None:
        source = ClipSource.random_weights(desc["model"], int(desc["random_seed"]))
    elif checkpoint:
        model = desc["model"] if not str(desc["model"]).startswith("local-dir:") else DEFAULT_MODEL
        source = resolve_clip(model, None, checkpoint)
    elif str(desc["model"]).startswith("local-dir:"):
        source = resolve_clip(desc["model"])
    elif desc.get("pretrained"):
        source = resolve_clip(desc["model"], desc["pretrained"])
    else:
        if not desc.get("checkpoint") or not os.path.isfile(desc["checkpoint"]):
            raise ModelError(f"The index's frames were embedded with {desc['name']} from {desc.get('checkpoint')}, "
                             "which is no longer there; pass its weights with --clip-checkpoint FILE.")
        source = resolve_clip(desc["model"], None, desc["checkpoint"])
    key = (source.model, source.pretrained, source.checkpoint, source.seed, device)
    emb = _EMBEDDERS.get(key)
    if emb is None:
        emb = ClipEmbedder(source, device=device)
        if emb.name != desc["name"]:
            raise ModelError(f"The index's frames were embedded with {desc['name']}, but {source.checkpoint or source.model} "
                             f"is {emb.name}; pass the same weights with --clip-checkpoint FILE.")
        _EMBEDDERS[key] = emb
    return emb


@dataclass
class VisualQuery:
    text: str | None = None
    image: str | os.PathLike | np.ndarray | None = None     # a still (path) or an RGB array
    take_ids: list[str] | None = None                       # only these takes
    scene: str | None = None
    take: str | None = None
    tags: list[str] = field(default_factory=list)           # every one of these tags (slugs or labels)
    limit: int = 50
    candidates: int = 0                                     # frames fetched (0: automatic)


# A shot found by its picture: a Hit (kind "visual") whose shot span and TC are the shot's, with its
# best frame in shot/frame/frame_tc/frame_seconds and the shot's tags.
VisualHit = Hit


def query_vector(embedder: ClipEmbedder, text: str | None = None,
                 image: str | os.PathLike | np.ndarray | None = None) -> np.ndarray:
    """The unit query vector of a text, a still, or both (their normalised sum)."""
    parts = []
    if text and text.strip():
        parts.append(embedder.embed_texts([text.strip()])[0])
    if image is not None:
        parts.append(embedder.embed_images([image])[0] if isinstance(image, np.ndarray)
                     else embedder.embed_image_file(image))
    if not parts:
        raise UsageError("Give a text or a still to search the picture for, e.g. dailies search visual "
                         "\"night exterior, car headlights\" or --image still.png.")
    return _unit(np.sum(parts, axis=0))


def _where(take_ids: list[str] | None, tags: Iterable[str]) -> dict | None:
    conds: list[dict] = []
    if take_ids is not None:
        conds.append({"take_id": {"$in": list(take_ids)}})
    for t in tags:
        conds.append({_tag_key(tag_slug(t)): True})
    if not conds:
        return None
    return conds[0] if len(conds) == 1 else {"$and": conds}


def _query_take_ids(index, query: VisualQuery) -> list[str] | None:
    ids = list(query.take_ids) if query.take_ids is not None else None
    if query.scene or query.take:
        from ..search import LineQuery, take_filter

        found = take_filter(index, LineQuery(text="", scene=query.scene, take=query.take))
        ids = sorted(found if ids is None else found & set(ids))
    return ids


def search_visual(index, query: VisualQuery, embedder: ClipEmbedder | None = None) -> list[VisualHit]:
    """Shots whose frames are nearest the query, best first (one hit per shot: its best frame)."""
    total = index.vectors.count(COLLECTION)
    if total == 0:
        raise UsageError(f"The index {index.path} has no picture vectors yet; index with CLIP weights present "
                         "(`dailies models fetch clip:ViT-B-32/laion2b_s34b_b79k` or --clip-checkpoint FILE).")
    embedder = embedder or embedder_for_index(index)
    q = query_vector(embedder, query.text, query.image)
    take_ids = _query_take_ids(index, query)
    if take_ids is not None and not take_ids:
        return []
    wanted = query.candidates or max(200, 12 * query.limit)
    res = index.vectors.nearest(COLLECTION, q, min(wanted, total), where=_where(take_ids, query.tags),
                                include=("metadatas", "distances"))
    best: dict[tuple[str, int], tuple[float, dict]] = {}
    for meta, dist in zip(res["metadatas"][0] if res["metadatas"] else [], res["distances"][0] if res["distances"] else []):
        key = (meta["take_id"], int(meta["shot"]))
        sim = 1.0 - float(dist)
        if key not in best or sim > best[key][0]:
            best[key] = (sim, meta)
    ranked = sorted(best.items(), key=lambda kv: -kv[1][0])
    return _visual_hits(index, [(k, sim, meta) for k, (sim, meta) in ranked], query.limit)


def _visual_hits(index, ranked: list[tuple[tuple[str, int], float, dict]], limit: int) -> list[VisualHit]:
    take_ids = sorted({k[0] for k, _, _ in ranked})
    rows = index.takes_by_id(take_ids, status="indexed")
    shots_of: dict[str, dict[int, Shot]] = {}
    spoken: dict[str, list] = {}
    hits: list[VisualHit] = []
    for (take_id, shot_idx), sim, meta in ranked:
        row = rows.get(take_id)
        if row is None:                      # not committed (interrupted run) or removed: never shown
            continue
        if take_id not in shots_of:
            shots_of[take_id] = {s.index: s for s in index.shots(take_id)}
        rate, clock = row.rate, row.clock
        shot = shots_of[take_id].get(shot_idx)
        if shot is None:                     # no shot detection: the whole take is one shot
            shot = Shot(shot_idx, 0, max(0, int(row["frames"] or 1) - 1))
        if take_id not in spoken:
            spoken[take_id] = index.lines_of_take(take_id)
        words = " ".join(ln.text for ln in spoken[take_id] if shot_idx in (ln.shots or []))
        frame = int(meta["frame"])
        hits.append(VisualHit(
            kind="visual", clip=row["path"], take_id=take_id, name=row["name"], scene=row["scene"],
            take=row["take"], camera=row["camera"], start=shot.start(rate), end=shot.end(rate),
            tc_in=clock.tc(shot.first_frame), tc_out=clock.tc(shot.last_frame + 1), rate=row["rate"],
            text=words[:300], score=sim, shots=[shot_idx], rankers={"visual": sim},
            shot=shot_idx, frame=frame, frame_tc=clock.tc(frame), frame_seconds=float(Fraction(frame) / rate),
            tags=[t for t in str(meta.get("tags") or "").split(",") if t]))
        if len(hits) >= limit:
            break
    return hits


def shot_similarities(index, q: np.ndarray, take_ids: Iterable[str]) -> dict[tuple[str, int], tuple[float, int]]:
    """Exact cosine of the query with every stored frame of these takes, best per shot:
    (take_id, shot) -> (similarity, best frame)."""
    take_ids = sorted(set(take_ids))
    out: dict[tuple[str, int], tuple[float, int]] = {}
    if not take_ids:
        return out
    for i in range(0, len(take_ids), 200):
        got = index.vectors.get(COLLECTION, where={"take_id": {"$in": take_ids[i:i + 200]}},
                                include=("embeddings", "metadatas"))
        embs = got.get("embeddings")
        if embs is None or not len(embs):
            continue
        sims = np.asarray(embs, dtype=np.float32) @ q.astype(np.float32)
        for meta, s in zip(got["metadatas"], sims):
            key = (meta["take_id"], int(meta["shot"]))
            if key not in out or s > out[key][0]:
                out[key] = (float(s), int(meta["frame"]))
    return out


def rerank_by_visual(index, hits: list[Hit], embedder: ClipEmbedder, text: str | None = None,
                     image: str | os.PathLike | np.ndarray | None = None, *, min_similarity: float | None = None,
                     rrf_k: int = 60) -> list[Hit]:
    """Combine a visual query with hits of another search (lines, a speaker's lines): each hit's visual
    score is the best similarity over the shots it spans; the two orders are fused by reciprocal rank
    (``rankers['visual']`` is set). Hits whose shots have no picture vectors rank last; with
    ``min_similarity`` hits below it are dropped."""
    if not hits:
        return []
    q = query_vector(embedder, text, image)
    sims = shot_similarities(index, q, {h.take_id for h in hits})
    scored = []
    for h in hits:
        vals = [sims[(h.take_id, s)][0] for s in (h.shots or [0]) if (h.take_id, s) in sims]
        v = max(vals) if vals else None
        if min_similarity is not None and (v is None or v < min_similarity):
            continue
        if v is not None:
            h.rankers = {**(h.rankers or {}), "visual": v}
        scored.append((h, v))
    first = {id(h): i for i, (h, _) in enumerate(scored)}
    order_v = sorted(scored, key=lambda hv: -(hv[1] if hv[1] is not None else -9.0))
    second = {id(h): i for i, (h, _) in enumerate(order_v)}
    return [h for h, _ in sorted(scored, key=lambda hv: -(1.0 / (rrf_k + 1 + first[id(hv[0])])
                                                        + 1.0 / (rrf_k + 1 + second[id(hv[0])])))]


# =============================================================================================
# Stills and thumbnails from the media
# =============================================================================================

def extract_frame(path: str, frame: int, *, max_width: int | None = None) -> np.ndarray:
    """Frame ``frame`` of a file (numbered as :func:`indexer.media.decode` numbers them) as RGB, found by
    seeking to the nearest keyframe before it."""
    import av

    from ..media import _open, probe

    info = probe(path)
    if not info.has_video:
        raise MediaError(f"{path}: has no picture.")
    container = _open(path)
    try:
        stream = container.streams[info.video_stream]
        tb = stream.time_base
        t0 = float(stream.start_time * tb) if stream.start_time is not None else 0.0
        target = t0 + float(Fraction(frame) / info.rate)
        size = None
        if max_width and info.width and info.width > max_width:
            size = (max_width, max(2, int(round(info.height * max_width / info.width))))
        kw = {"width": size[0], "height": size[1]} if size else {}
        for back in (0.5, 3.0, 15.0, None):
            last_try = back is None or target - back <= t0
            container.seek(0 if back is None else max(0, int((target - back) / tb)), stream=stream,
                           backward=True, any_frame=False)
            first = True
            prev = None
            for f in container.decode(stream):
                if f.pts is None:
                    continue
                idx = int(math.floor((float(f.pts * tb) - t0) * float(info.rate) + 0.5))
                if first and idx > frame and not last_try:
                    break                       # the seek landed after the frame: seek further back
                first = False
                if idx >= frame:                # a frame missing from the stream shows the next picture
                    return f.to_ndarray(format="rgb24", **kw)
                prev = f
            else:
                if prev is not None:            # past the end: the last picture
                    return prev.to_ndarray(format="rgb24", **kw)
            if last_try:
                break
        raise MediaError(f"{path}: frame {frame} cannot be decoded.")
    except av.error.FFmpegError as exc:
        raise MediaError(f"{path}: frame {frame} cannot be decoded ({exc}).") from None
    finally:
        container.close()


def write_thumbnails(hits: Sequence[VisualHit], folder: str | os.PathLike, *, width: int = 480,
                     force: bool = False) -> list[str]:
    """A JPEG of each hit's best frame in ``folder`` (``NAME_TC_shotK.jpg``); returns the paths.

    An existing file is never overwritten silently: without ``force`` the first one found stops the
    call before anything is written."""
    from PIL import Image

    out_dir = Path(folder).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir} is a file; give a folder for the thumbnails.")
    targets = []
    for h in hits:
        tc = (h.frame_tc or h.tc_in).replace(":", "-").replace(";", "-")
        targets.append((h, out_dir / f"{h.name}_{tc}_shot{h.shot if h.shot is not None else 0}.jpg"))
    if not force:
        for _, p in targets:
            if p.exists():
                raise UsageError(f"{p} already exists; pass --force to overwrite it.")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for h, p in targets:
        frame = h.frame if h.frame is not None else 0
        image = extract_frame(h.clip, frame, max_width=width)
        Image.fromarray(image).save(p, quality=88)
        paths.append(str(p))
    return paths
