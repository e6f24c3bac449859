"""Files the review room sends for download (:func:`attachment`): an export's outputs, one file as it is or
several as one zip, named after what was searched (:func:`download_name`)."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import quote

HEADER_BYTES = 16384        # the longest list of files or notes sent in a header (JSON)
TYPES = {".edl": "text/plain", ".txt": "text/plain", ".csv": "text/csv", ".xml": "application/xml",
         ".fcpxml": "application/xml", ".otio": "application/json", ".zip": "application/zip",
         ".srt": "application/x-subrip", ".vtt": "text/vtt", ".json": "application/json", ".ale": "text/plain"}


def download_name(kind: str, value: str, longest: int = 48) -> str:
    """A file stem for a search's export, ASCII letters, digits and dashes: ``line-we-have-to-follow-the-data``,
    ``script-12A-4``."""
    words = re.findall(r"[A-Za-z0-9]+", value.encode("ascii", "ignore").decode())
    stem = "-".join(words)[:longest].rstrip("-")
    return f"{kind}-{stem}" if stem else kind


def disposition(name: str) -> str:
    """``Content-Disposition`` of a download named ``name`` (RFC 6266: an ASCII name, and the exact one encoded)."""
    plain = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``STEM_2.ext``, ``STEM_3.ext``... when a member of that name is already in the zip (two takes
    of one clip name in different folders)."""
    out, n = name, 1
    while out in taken:
        n += 1
        out = f"{Path(name).stem}_{n}{Path(name).suffix}"
    taken.add(out)
    return out


def attachment(outputs: Sequence[tuple[Path, str, Any]], notes: Sequence[str] = (), zip_name: str = "export.zip") -> Any:
    """The outputs (``[(path, text, description)]``, as :mod:`indexer.export` makes them) as one download: a
    single file as it is, several as the zip ``zip_name`` of them. Headers: ``X-Dailies-File-Count``, and, when
    each fits in ``HEADER_BYTES``, ``X-Dailies-Files`` (names and descriptions, as the CLI prints them) and
    ``X-Dailies-Notes`` (e.g. handles the media cut short), JSON lists."""
    from starlette.responses import Response

    if len(outputs) == 1:
        path, text, _ = outputs[0]
        name, body = path.name, text.encode("utf-8")
    else:
        buf = io.BytesIO()
        taken: set[str] = set()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for path, text, _ in outputs:
                z.writestr(_unique(path.name, taken), text)
        name, body = zip_name, buf.getvalue()
    headers = {"Content-Disposition": disposition(name), "X-Dailies-File-Count": str(len(outputs))}
    described = json.dumps([{"name": p.name, "description": d} for p, _, d in outputs])
    if len(described) <= HEADER_BYTES:          # a browser refuses a response whose headers pass ~256 KB
        headers["X-Dailies-Files"] = described
    said = json.dumps(list(notes))
    if notes and len(said) <= HEADER_BYTES:
        headers["X-Dailies-Notes"] = said
    return Response(body, media_type=TYPES.get(Path(name).suffix, "application/octet-stream"), headers=headers)
