"""Settings: command-line flags > environment variables > defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from .timecode import parse_rate

DEFAULT_INDEX = "dailies-index"
DEFAULT_WHISPER = "tiny.en"
DEFAULT_SHOT_DETECTOR = "adaptive"
# Timecode rate for audio-only files that do not state one (iXML TIMECODE_RATE wins when present).
DEFAULT_AUDIO_TC_RATE = Fraction(24000, 1001)

# Extensions picked up when a folder is indexed (a file named on the command line is always tried).
MEDIA_EXTENSIONS = frozenset(
    ".mov .mp4 .m4v .mxf .mkv .avi .mts .m2ts .ts .webm .mpg .mpeg .3gp .dv .wmv .flv .ogv "
    ".wav .bwf .rf64 .w64 .aif .aiff .flac .mp3 .m4a .aac .ogg .opus .wma".split()
)


def index_path(flag: str | os.PathLike | None = None) -> Path:
    """Where the index lives: ``--index`` > ``DAILIES_INDEX`` > ``./dailies-index``."""
    value = flag or os.environ.get("DAILIES_INDEX") or DEFAULT_INDEX
    return Path(value).expanduser()


def models_dir() -> Path:
    """The model cache: ``DAILIES_MODELS`` > ``$XDG_CACHE_HOME/dailies`` > ``~/.cache/dailies``."""
    env = os.environ.get("DAILIES_MODELS")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "dailies"


def default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@dataclass
class IndexSettings:
    """Everything that decides how a take is indexed (recorded in the catalog with each take)."""

    whisper_model: str = field(default_factory=lambda: os.environ.get("DAILIES_WHISPER_MODEL", DEFAULT_WHISPER))
    device: str = field(default_factory=lambda: os.environ.get("DAILIES_DEVICE", "auto"))
    compute_type: str = "auto"
    language: str | None = None
    beam_size: int = 5
    vad: bool = True
    threads: int = field(default_factory=default_threads)
    shot_detector: str = DEFAULT_SHOT_DETECTOR   # adaptive | content | none
    shot_threshold: float | None = None
    # long-GOP picture on a hardware decoder: off | auto | a device type (indexer.media.HW_DECODE_OFF)
    hw_decode: str = field(default_factory=lambda: os.environ.get("DAILIES_HW_DECODE", "off"))
    audio_tc_rate: Fraction = field(
        default_factory=lambda: parse_rate(os.environ.get("DAILIES_AUDIO_TC_RATE", "24000/1001"))
    )
    force: bool = False
    # speakers: "default" (segmentation-3.0 + CAM++ from the model cache), a pyannote hub id or a folder
    speakers: bool = True
    diarization_model: str = field(default_factory=lambda: os.environ.get("DAILIES_DIARIZATION_MODEL", "default"))
    channels: str = "auto"         # auto | mix | each | N,M (iso tracks / lavs; indexer.tracks)
    # picture (CLIP): "MODEL/TAG" (open_clip name and pretrained tag), or a local checkpoint file/folder
    visual: bool = True
    clip_model: str = field(default_factory=lambda: os.environ.get("DAILIES_CLIP_MODEL", ""))
    clip_checkpoint: str | None = field(default_factory=lambda: os.environ.get("DAILIES_CLIP_CHECKPOINT") or None)
    clip_batch: int = 32
    keyframe_every: float = 5.0
    tag_vocabulary: str | None = None


def torch_device(setting: str | None, what: str) -> str:
    """``--device`` for a torch model: ``auto`` (or nothing) is ``cuda`` when torch sees a GPU, else
    ``cpu``; asking for ``cuda`` where torch sees none is a clear error (``what`` names the step).
    torch (seconds to import) is not imported when the answer is ``cpu``: CTranslate2 (loaded for
    speech anyway) counts the CUDA devices first."""
    from .errors import ModelError

    device = setting or "auto"
    if device == "cpu":
        return device
    if device == "auto":
        import ctranslate2

        if ctranslate2.get_cuda_device_count() == 0:
            return "cpu"
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"--device {device} was asked for {what}, but torch sees no CUDA device here; "
                         "use --device cpu.")
    return device
