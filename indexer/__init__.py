"""dailies: index film and TV dailies and find every take where a line was delivered."""

from __future__ import annotations

import os

# Studio footage, and what is known of it, never leaves the building. pyannote.audio 4 sends a usage
# report (its version, the file's duration and speaker counts) to otel.pyannote.ai by default, on
# every model load and every file it diarizes; Hugging Face's hub client reports downloads. Both are
# off unless the user turns them on (PYANNOTE_METRICS_ENABLED=true). Set here, before either library
# is imported, because pyannote reads its default at import. Chroma's is off in indexer.store.
for _name, _off in (("PYANNOTE_METRICS_ENABLED", "false"), ("HF_HUB_DISABLE_TELEMETRY", "1")):
    os.environ.setdefault(_name, _off)

try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("dailies")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0+unknown"
