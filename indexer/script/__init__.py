"""Screenplays: import Fountain and Final Draft, paginate, match takes to script lines, coverage.

Parser choice: our own small parsers (``fountain.py``, ``fdx.py``). The Fountain parsers on PyPI were
considered: ``fountain`` (0.1.3, 2016, unmaintained), ``jouvence`` (2020, unmaintained),
``fountain-parser``/``fountain-py`` (2026, new, single-author, few users), ``screenplain`` (MIT,
maintained, but a converter whose parse keeps no source positions, and which misses ``EXT/INT``
headings) and ``screenplay-tools`` (MIT, young). None gives what dailies needs in one piece
(scene numbers as written, extensions, dual dialogue, source line numbers for errors, FDX page data,
our pagination), and adding a dependency needs the project's approval, so the parsers are ours and
are tested against the element dumps shipped with ``wildwinter/fountain-tools`` and the screenplays
in ``shared/eval/script``. FDX is read with defusedxml (already a dependency).

Modules: ``model`` (dataclasses), ``fountain``, ``fdx``, ``pages`` (pagination, eighths),
``match`` (take words -> deliveries; pure), ``catalog`` (sqlite tables in the index, import
versions, stored matches, queries), ``report`` (coverage matrix: table, CSV, JSON, HTML).
"""

from __future__ import annotations

from pathlib import Path

from .model import DialogueLine, Element, Scene, Script, ScriptError

FOUNTAIN_EXTENSIONS = (".fountain", ".spmd", ".txt", ".text", ".ftn")
FDX_EXTENSIONS = (".fdx",)


def parse_bytes(data: bytes, name: str) -> Script:
    """Parse a screenplay (format from the extension, or sniffed) and paginate it."""
    from .pages import paginate

    suffix = Path(name).suffix.lower()
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if suffix in FDX_EXTENSIONS or head.startswith((b"<?xml", b"<FinalDraft", b"<!DOCTYPE")):
        from .fdx import parse_fdx

        script = parse_fdx(data, name)
    elif suffix in FOUNTAIN_EXTENSIONS:
        from .fountain import parse_fountain

        script = parse_fountain(data, name)
    else:
        raise ScriptError(f"{Path(name).name} is not a screenplay format dailies reads ('{suffix or 'no extension'}'); "
                          "import Fountain (.fountain, .spmd, .txt) or Final Draft (.fdx).")
    if not script.lines:
        what = f"{len(script.scenes)} scene{'s' if len(script.scenes) != 1 else ''}" if script.scenes else "no scenes"
        script.warnings.append(
            f"{Path(name).name} has no dialogue ({what}, no character cue followed by dialogue): there is "
            "nothing to match takes against; is it a Fountain or Final Draft screenplay?")
    return paginate(script)


def load_file(path: str | Path) -> Script:
    """Read and parse a screenplay file (Fountain, plain-text Fountain, or Final Draft)."""
    p = Path(path)
    if not p.exists():
        raise ScriptError(f"{p} does not exist.")
    if p.is_dir():
        raise ScriptError(f"{p} is a folder; give a screenplay file (.fountain, .txt or .fdx).")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ScriptError(f"{p} cannot be read ({exc.strerror}).") from None
    if not data.strip():
        raise ScriptError(f"{p} is empty.")
    return parse_bytes(data, str(p))


__all__ = ["DialogueLine", "Element", "Scene", "Script", "ScriptError", "load_file", "parse_bytes"]
