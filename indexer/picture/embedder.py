"""The CLIP model at work: open_clip's image and text towers turning pictures and texts into unit vectors.

:class:`ClipEmbedder` loads a :class:`indexer.models.clip.ClipSource` on first use (offline) and keeps it
for the run; :func:`embedder_for_index` loads the very model that made an index's frame vectors, for
queries. torch and open_clip are imported inside the functions that use them.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import DailiesError, MediaError, ModelError, UsageError
from ..models.checksum import file_sha256
from ..models.clip import DEFAULT_MODEL, ClipSource, import_open_clip, offline, quiet, resolve_clip

META_KEY = "clip_frames"          # the full description of the model that made the index's frame vectors
DEFAULT_BATCH = 32


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
        open_clip = import_open_clip()
        import torch

        from ..config import torch_device

        device = torch_device(self.device_setting, "CLIP")
        if device == "cpu" and self.threads:
            torch.set_num_threads(self.threads)
        src = self.source
        try:
            with quiet(), offline():
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
        return unit(np.concatenate(out))

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
        return unit(np.concatenate(out))

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


def unit(v: np.ndarray) -> np.ndarray:
    """Rows of ``v`` scaled to length 1, as float32."""
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
