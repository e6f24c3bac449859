"""The one sha256 helper for model files: every model (Whisper, diarization, CLIP, the text embedding)
is identified and verified through it, so a checksum means the same thing everywhere."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import BinaryIO, Callable

BLOCK = 1 << 20
_CACHE: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, memoised per resolved path, size and modification time within this process
    (a model listed, loaded and recorded in one run is read once)."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _CACHE:
        with open(path, "rb") as f:
            _CACHE[key] = hashlib.file_digest(f, "sha256").hexdigest()
    return _CACHE[key]


def copy_sha256(src: BinaryIO, out: BinaryIO, on_block: Callable[[int], None] | None = None) -> str:
    """Copy a stream to ``out`` block by block, hashing what passes; returns the sha256. ``on_block``
    gets each block's size (for progress)."""
    h = hashlib.sha256()
    for block in iter(lambda: src.read(BLOCK), b""):
        h.update(block)
        out.write(block)
        if on_block:
            on_block(len(block))
    return h.hexdigest()
