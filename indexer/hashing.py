"""What identifies a take whatever its name or place: the content hash of a media file (whole up to 1 GiB, sampled
above), and the take id made from it."""

from __future__ import annotations

import hashlib
import os


# A camera original above this size is identified by a sample of its bytes, not all of them: hashing a
# 100 GB original whole reads 100 GB before any work starts (minutes from a RAID, far longer from a NAS).
SAMPLED_ABOVE = 1 << 30
_EDGE = 16 << 20         # the head and the tail: container headers, index tables, footers, first and last frames
_SAMPLES = 64            # evenly spaced 1 MiB blocks through the essence between them
_BLOCK = 1 << 20


def content_hash(path: str) -> str:
    """What identifies a take whatever its name or place (32 hex digits).

    Files up to ``SAMPLED_ABOVE`` (1 GiB): BLAKE2b-128 of every byte. Larger ones: BLAKE2b-128 (its own
    personalisation, so it can never equal a whole-file hash) of the size, the first and last 16 MiB and 64
    evenly spaced 1 MiB blocks, 96 MiB whatever the size. Safe for camera originals because they are written
    once: a re-wrap, trim, re-export or partial copy changes the size or the container's head or tail (QuickTime
    moov/mdat sizes and creation time, MXF header and footer partitions with the clip's UMID and timecode), and
    two different takes never share a header. Only an in-place edit of the essence that keeps the size and
    spares every sample would go unnoticed; no camera or offload tool writes one.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        if size <= SAMPLED_ABOVE:
            return hashlib.file_digest(f, lambda: hashlib.blake2b(digest_size=16)).hexdigest()
        return _sampled_digest(f, size)


def whole_content_hash(path: str) -> str:
    """BLAKE2b-128 of every byte: the identity of a large take indexed before sampled hashing."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, lambda: hashlib.blake2b(digest_size=16)).hexdigest()


def _sampled_digest(f, size: int) -> str:
    h = hashlib.blake2b(digest_size=16, person=b"dailies-sample1")
    h.update(size.to_bytes(8, "little"))
    last = max(0, size - _BLOCK)
    spans = [(0, _EDGE), (max(0, size - _EDGE), _EDGE)] + [(i * last // (_SAMPLES - 1), _BLOCK)
                                                           for i in range(_SAMPLES)]
    for offset, length in spans:
        f.seek(offset)
        h.update(f.read(length))
    return h.hexdigest()


def take_id_for(digest: str) -> str:
    return digest[:12]
