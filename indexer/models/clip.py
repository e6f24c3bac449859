"""Finding and fetching CLIP weights: which open_clip model, where its weights are on this machine.

An open_clip architecture + pretrained tag (default ``ViT-B-32`` / ``laion2b_s34b_b79k``) is found in the
model cache (``dailies models fetch clip:ViT-B-32/laion2b_s34b_b79k`` puts it there, the only step that
needs network) or in the Hugging Face cache open_clip itself uses; or a local checkpoint file
(``--clip-checkpoint FILE``, weights for ``--clip-model``) or an open_clip folder (``open_clip_config.json``
+ weights). Nothing is ever downloaded while indexing or searching. :func:`resolve_clip` says in one
sentence which model, where it looked and how to get it when the weights are absent.

open_clip is imported only where its own tables are needed: the default weights are found without it.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..config import models_dir
from ..errors import DailiesError, ModelError
from ..models.checksum import file_sha256

DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = "laion2b_s34b_b79k"
# Where open_clip publishes the default weights (its get_pretrained_cfg, checked by
# tests/test_vision_clip.py): finding them, or saying they are absent, needs no open_clip import,
# which costs seconds at the start of every index run (torchvision, timm).
KNOWN_PRETRAINED: dict[tuple[str, str], dict[str, str]] = {
    (DEFAULT_MODEL, DEFAULT_PRETRAINED): {"hf_hub": "laion/CLIP-ViT-B-32-laion2B-s34B-b79K/", "url": ""},
}


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


def import_open_clip():
    try:
        with quiet():
            import open_clip
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise ModelError(f"open_clip cannot be imported ({exc}); reinstall dailies with `uv sync`.") from None
    return open_clip


@contextlib.contextmanager
def quiet():
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
def offline():
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
    folder = "models--" + repo.replace("/", "--")      # the hub cache's folder of a model repository
    if not any(os.path.isdir(os.path.join(d, folder)) for d in (str(clip_cache()), _hf_cache_dir())):
        return None      # in no cache: no need to import huggingface_hub's download module (0.4 s of every run)
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
        open_clip = import_open_clip()
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
    open_clip = import_open_clip()
    known = open_clip.list_models()
    if model not in known:
        close = difflib.get_close_matches(model, known, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ModelError(f"Unknown CLIP architecture '{model}'{hint}; `python -c \"import open_clip; "
                         f"print(open_clip.list_models())\"` lists them.")


def fetch_clip(spec: str | None = None) -> Path:
    """Download CLIP weights into the model cache (explicit; the only step that needs network)."""
    model, tag = parse_clip_spec(spec)
    open_clip = import_open_clip()
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

