"""Output files: the format from the extension (or ``--format``), no overwriting without ``force``,
and nothing half-written (each file is written beside its target and moved into place)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Mapping, Sequence

from ..errors import DailiesError, UsageError

# format name -> extension, per command
STRINGOUT_FORMATS = {"edl": ".edl", "xml": ".xml", "fcpxml": ".fcpxml", "otio": ".otio"}
MARKER_FORMATS = {"avid": ".txt", "resolve": ".edl", "premiere": ".xml", "csv": ".csv", "otio": ".otio"}
ALE_FORMATS = {"ale": ".ale"}
TRANSCRIPT_EXT = {"srt": ".srt", "vtt": ".vtt", "csv": ".csv", "txt": ".txt", "json": ".json"}

ALIASES = {"fcp7": "xml", "fcpxml": "fcpxml", "cmx3600": "edl", "cmx": "edl", "fcp": "xml",
           "avid": "avid", "resolve": "resolve", "premiere": "premiere", "webvtt": "vtt"}


def pick_format(out: Path | None, fmt: str | None, formats: Mapping[str, str], what: str) -> str:
    """The format named by ``--format``, else the one ``out``'s extension stands for."""
    names = ", ".join(formats)
    if fmt:
        f = fmt.lower().lstrip(".")
        f = f if f in formats else ALIASES.get(f, f)
        if f not in formats:
            # an extension given as --format (e.g. --format txt for Avid markers)
            by_ext = [k for k, e in formats.items() if e == "." + fmt.lower().lstrip(".")]
            if len(by_ext) == 1:
                return by_ext[0]
            raise UsageError(f"Unknown {what} format '{fmt}' (use one of: {names}).")
        return f
    if out is None or str(out) == "-":
        raise UsageError(f"Say which {what} format to write with --format ({names}).")
    ext = out.suffix.lower()
    matches = [k for k, e in formats.items() if e == ext]
    if not matches:
        if not ext:
            raise UsageError(f"{out} has no extension; give --format ({names}) or a file name ending in "
                             f"{', '.join(dict.fromkeys(formats.values()))}.")
        raise UsageError(f"Unknown {what} format '{ext}' for {out} (use one of: "
                         f"{', '.join(dict.fromkeys(formats.values()))}, or --format {names}).")
    return matches[0]


def is_folder_target(out: Path) -> bool:
    return out.is_dir() or str(out).endswith(os.sep) or (not out.suffix and not out.exists())


def numbered(out: Path, labels: Sequence[str]) -> list[Path]:
    """``OUT.ext`` for one file; ``OUT_label.ext`` each when there are several."""
    if len(labels) == 1:
        return [out]
    return [out.with_name(f"{out.stem}_{_safe(label)}{out.suffix}") for label in labels]


def _safe(name: str) -> str:
    keep = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
    return keep.strip("._") or "file"


def per_take_paths(out: Path, names: Sequence[str], ext: str) -> list[Path]:
    """One file per take: in the folder ``out`` as NAME.ext, or beside ``out`` as OUT_NAME.ext."""
    if is_folder_target(out):
        return [out / f"{_safe(n)}{ext}" for n in names]
    return numbered(out, list(names))


def write_files(files: Sequence[tuple[Path, str]], *, force: bool = False, make_folder: bool = False) -> list[Path]:
    """Write every file or none: all targets are checked before the first is written."""
    if not files:
        raise DailiesError("Nothing to write.")
    seen: set[Path] = set()
    for path, _ in files:
        if path in seen:
            raise DailiesError(f"Two outputs would both be written to {path}; name the output differently.")
        seen.add(path)
        if path.is_dir():
            raise DailiesError(f"{path} is a folder; give a file name (e.g. {path / 'stringout.edl'}).")
        if path.exists() and not force:
            raise DailiesError(f"{path} already exists; pass --force to overwrite it.")
        parent = path.parent
        if not parent.exists():
            if make_folder:
                try:
                    parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise DailiesError(f"Cannot create the folder {parent} ({exc.strerror}).") from None
            else:
                raise DailiesError(f"Cannot write {path}: the folder {parent} does not exist.")
        if not parent.is_dir():
            raise DailiesError(f"Cannot write {path}: {parent} is not a folder.")
        if not os.access(parent, os.W_OK):
            raise DailiesError(f"Cannot write {path}: the folder {parent} is not writable.")
    written = []
    for path, text in files:
        _atomic_write(path, text)
        written.append(path)
    return written


def _target_mode(path: Path) -> int:
    """The mode the written file gets: an existing file keeps its own; a new one gets what the umask
    allows (mkstemp alone would leave 0600, so an editor on another account could not open the EDL)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _atomic_write(path: Path, text: str) -> None:
    tmp = None
    try:
        mode = _target_mode(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=str(path.parent))
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise DailiesError(f"Cannot write {path} ({exc.strerror or exc}).") from None
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
