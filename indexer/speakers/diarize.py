"""Who speaks when, per take: the speaker step itself (:class:`Diarizer`). It runs pyannote's
diarization pipeline (:mod:`indexer.speakers.engine`, our copy of it without pyannote.audio) with
segmentation-3.0 and our CAM++ (loaded by :mod:`indexer.speakers.load`; on the CPU in ONNX Runtime,
:mod:`indexer.speakers.nets`), refines the result (:mod:`indexer.speakers.refine`) and finds which
channel each speaker owns (:mod:`indexer.speakers.channels`).

The default models are pyannote segmentation-3.0 (local speaker activity in 10 s windows, up to 3
speakers each, overlap included) and CAM++ (``indexer.speakers.campplus``) as the speaker-embedding
model, clustered agglomeratively on cosine distance. CAM++ runs on every chunk's masked speech (some
ten passes per second of speech at pyannote's 1 s step: ``"chunks"``, the default), or its trunk runs
once per file and its frame statistics are pooled per (chunk, local speaker) (``embeddings="pooled"``,
:func:`indexer.speakers.load.frame_features`); with ``"pooled-all"`` the refinement's segment and
window embeddings are pooled from them too. A ``--diarization-model`` (a pyannote pipeline folder or
hub id) runs in ``pyannote.audio`` itself.

The audio arrives in memory (16 kHz mono float32, decoded once per file by the pipeline and shared
with speech recognition) and goes to the engine as a numpy array (to a pyannote pipeline as
``{"waveform", "sample_rate"}``).

The segmentation decides who speaks in each 10 s window and clusters the windows' speakers across the take.
Two similar voices (the fixture shoot's two synthetic voices are the extreme case) can be one
speaker to the segmentation model inside a window; :func:`indexer.speakers.refine.refine` then checks
every local speaker on utterance-level embeddings (one per stretch of exclusive speech) and splits it
when its utterances form two coherent, clearly different groups.
:func:`indexer.speakers.refine.split_by_known_voices` does the same for short takes using the voices
the registry already knows from other takes.

Output per take (:class:`indexer.speakers.records.Diarization`): speaker turns (a
``pyannote.core.Annotation``, overlap included), exclusive turns (one speaker at a time, for
attributing words), overlap regions, one embedding per local speaker (for the production-wide voice
registry, ``indexer.speakers.identity``) and, with several channels, which channel each speaker dominates.

Words are attributed to speakers, and lines split where the speaker changes, in :mod:`indexer.align`
(:func:`indexer.align.assign_lines`).

torch and pyannote are imported inside functions only; the default CPU path imports neither torch nor
pyannote.audio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..errors import UsageError
from ..models.diarization import DiarizationModels
from . import channels as _channels
from .load import (CAMPP_INT8, DEFAULT_PARAMS, EMBED_MIN_SECONDS, EMBEDDING_MODES, EMBEDDINGS, load as _load,
                   load_engine, segmentation_step_for)
from .records import SAMPLE_RATE, Diarization, LocalSpeaker
from .refine import REFINE, refine, resegment, speech_windows

if TYPE_CHECKING:  # pragma: no cover
    from pyannote.core import Annotation


class Diarizer:
    """Diarizes takes; the models are loaded on first use and kept for the run."""

    def __init__(self, models: DiarizationModels, *, params: dict | None = None, threads: int | None = None,
                 channels: str = "mix", segmentation_step: float | None = None, refine: bool = True,
                 device: str | None = "cpu", embeddings: str = EMBEDDINGS, int8: bool = CAMPP_INT8):
        self.models = models
        self.int8 = int8                    # the int8 CAM++ for the engine's chunk embeddings on the CPU
        if embeddings not in EMBEDDING_MODES:
            raise UsageError(f"speaker embeddings {embeddings!r}: choose one of {', '.join(EMBEDDING_MODES)}.")
        self.embeddings = embeddings        # see indexer.speakers.load.EMBEDDINGS
        self.device = device or "cpu"           # cpu | cuda | auto (resolved when the models load)
        self.refine = refine
        self.params = params or DEFAULT_PARAMS
        self.threads = threads
        self.channels = _channels.parse_channels(channels)
        self.channels_spec = channels or "mix"
        self.segmentation_step = segmentation_step or segmentation_step_for(embeddings)
        self._pipeline = None
        self._embedder = None
        self.last_timings: dict[str, float] = {}    # seconds per step of the last call (the bench's profile)
        self.last_skipped = 0                       # 10 s chunks of the last call left out as silence

    @property
    def pipeline(self):
        """The default models' :class:`indexer.speakers.engine.Engine`, or a pyannote pipeline."""
        if self._pipeline is None:
            from ..config import torch_device

            if self.models.kind == "default":
                device = torch_device(self.device, "speaker diarization")
                self._pipeline, self._embedder = load_engine(
                    self.models, device=device, params=self.params, threads=self.threads,
                    segmentation_step=self.segmentation_step, embeddings=self.embeddings, int8=self.int8)
                self.device = device
            else:
                self._pipeline, self.device = _load(self.models, device=self.device, params=self.params,
                                                    threads=self.threads, segmentation_step=self.segmentation_step,
                                                    embeddings=self.embeddings)
                self._embedder = getattr(getattr(self._pipeline, "_embedding", None), "embedder", None)
        return self._pipeline

    @property
    def embedder(self):
        """CAM++ (the default models' embedder, also used by the refinement), or None."""
        self.pipeline
        return self._embedder

    @property
    def embedding_model(self) -> str:
        """What made the speakers' embeddings (the voice registry never mixes models)."""
        from .campplus import NAME

        return NAME if self.models.kind == "default" else f"pipeline:{self.models.pipeline}"

    @property
    def compute_type(self) -> str | None:
        """The CAM++ arithmetic: ``int8 chunk embeddings`` (the engine's, on the CPU; float32 elsewhere) or
        ``float32``; None for a pyannote pipeline. What ran once the models are loaded, else what will."""
        if self.models.kind != "default":
            return None
        if self._pipeline is not None:
            chunk = getattr(getattr(getattr(self._pipeline, "embed", None), "embedder", None), "precision", "float32")
        else:
            chunk = "int8" if self.int8 and self.device == "cpu" and self.embeddings == "chunks" else "float32"
        return "int8 chunk embeddings" if chunk == "int8" else "float32"

    def describe(self) -> dict[str, Any]:
        from importlib.metadata import version     # not pyannote.audio.__version__: importing it costs seconds

        return {**self.models.describe(), "pyannote.audio": version("pyannote.audio"),
                "params": self.params if self.models.kind == "default" else None,
                "segmentation_step": self.segmentation_step, "channels": self.channels_spec,
                "embed_min_seconds": EMBED_MIN_SECONDS, "compute_type": self.compute_type,
                "refine": REFINE if self.refine and self.models.kind == "default" else None,
                # the segmentation's 10 s chunks that no speech region of the voice activity detector reaches are not
                # run (engine.chunks_to_run; the pipeline passes faster-whisper's regions)
                "silent_chunks": "skipped" if self.models.kind == "default" else None,
                # named only when not the default, so the key of every index made before the option stays
                # the same (its stored diarizations keep serving the resume cache and the end-of-run pass)
                **({"embeddings": self.embeddings} if self.models.kind == "default" and self.embeddings != "chunks"
                   else {})}

    def key(self) -> str:
        """Identifies the settings (for the resume cache): same key, same result."""
        import json

        d = self.describe()
        d.pop("pyannote.audio", None)
        # Like Whisper's, the compute type is not part of the key: the int8 chunk embeddings cluster the same
        # speakers as float (load.CAMPP_INT8), and every index made before them keeps its stored diarizations
        # for the resume cache and the end-of-run pass (identity.reread_stored reads them by this key).
        d.pop("compute_type", None)
        # Nor is skipping silent chunks: every frame within 3 s of the detector's speech is diarized as before (every
        # figure of the AMI and fixture files was the same), and stored diarizations keep serving as above.
        d.pop("silent_chunks", None)
        return json.dumps(d, sort_keys=True)

    def __call__(self, audio: np.ndarray, *, channels: np.ndarray | None = None, picked: list[int] | None = None,
                 progress: Callable[[str, float, float], None] | None = None, uri: str = "take",
                 speech: list[tuple[int, int]] | None = None) -> Diarization:
        """Diarize 16 kHz mono ``audio``; ``channels`` (C, n) enables per-channel attribution when the
        diarizer was made with ``channels='each'`` or a channel list, or (``auto``) on the take's iso
        channels ``picked`` (:mod:`indexer.tracks`). ``speech``: where the voice activity detector heard speech
        in ``audio`` ((start, end) samples: :func:`indexer.speech.speech_regions`, or what faster-whisper's own
        detector found); the default models' segmentation skips the 10 s chunks that no region comes near."""
        if channels is not None and self.channels == "auto":
            picked = [c for c in picked or [] if c < channels.shape[0]]
            chan = channels[picked] if picked else None
        elif channels is not None and self.channels != "mix":
            picked = _channels.pick_channels(self.channels, channels.shape[0])
            if not picked:
                raise UsageError(f"--channels {self.channels_spec}: the file has {channels.shape[0]} channel(s).")
            chan = channels[picked]
            if isinstance(self.channels, list):
                audio = chan.mean(axis=0)
                if speech is not None:            # the regions were heard in another mix: found again in this one
                    from ..speech import speech_regions

                    speech = speech_regions(audio)
        else:
            picked, chan = [], None
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        duration = len(audio) / SAMPLE_RATE
        self.last_skipped = 0
        if duration < 0.5:
            from pyannote.core import Annotation

            return Diarization(Annotation(), Annotation(), [], duration)

        pipeline = self.pipeline
        clock = _StepClock()

        def hook(step, artefact, file=None, total=None, completed=None):
            # pyannote names a step when it ends; "discrete_diarization" ends the clustering
            clock.reached({"discrete_diarization": "clustering"}.get(step, step))
            if progress is not None and total:
                progress(step, float(completed or 0), float(total))
        if self.models.kind == "default":
            result = pipeline(audio, hook=hook, uri=uri, speech=speech)
            self.last_skipped = pipeline.last_skipped
            turns, exclusive, centroids = result.turns, result.exclusive, result.centroids
        else:
            import torch

            file = {"waveform": torch.from_numpy(audio)[None], "sample_rate": SAMPLE_RATE, "uri": uri}
            turns, exclusive, centroids = _unpack(pipeline(file, hook=hook))
        clock.reached("turns")            # pyannote's last step: the diarization made into turns
        labels = list(turns.labels())
        speakers = []
        for k, label in enumerate(labels):
            emb = None
            if centroids is not None and k < len(centroids) and np.all(np.isfinite(centroids[k])) \
                    and np.linalg.norm(centroids[k]) > 0:
                emb = (centroids[k] / np.linalg.norm(centroids[k])).astype(np.float32)
            speakers.append(LocalSpeaker(str(label), emb, float(exclusive.label_duration(label))))
        diar = Diarization(turns, exclusive, speakers, duration)
        embedder = self.embedder
        if embedder is not None and self.refine:
            embedder = self._span_embedder(embedder, audio)
            diar = refine(diar, audio, embedder)
            clock.reached("refine")
            cache: dict = {}
            for _ in range(int(REFINE["reseg_passes"])):     # speakers' embeddings get purer each pass
                again = resegment(diar, audio, embedder, cache=cache)
                if again is diar:
                    break
                diar = again
            clock.reached("resegment")
            diar.windows = speech_windows(diar, audio, embedder, cache)
            clock.reached("windows")
        if chan is not None and chan.shape[0] > 1:
            _channels.channel_owners(diar, chan, picked)
            if self.channels == "auto" and len(set(diar.channel_owner.values())) < len(picked):
                # the mix's diarization did not give every iso its own voice (overlapped speech runs two
                # voices together): each iso's owner is a voice (indexer.tracks)
                from ..tracks import iso_diarization

                diar = iso_diarization(chan, picked, duration, getattr(embedder, "embedder", embedder))
                diar.channel_levels = _channels.channel_levels(chan)
            clock.reached("channels")
        self.last_timings = clock.seconds
        return diar

    def _span_embedder(self, embedder, audio: np.ndarray):
        """What the refinement embeds its segments and windows with: with ``pooled-all`` embeddings, the
        file's CAM++ frame features (computed once, by pyannote's embedding step) pooled per stretch
        (:class:`indexer.speakers.load.PooledSpans`); else CAM++ run on each stretch."""
        if self.embeddings != "pooled-all":
            return embedder
        from .load import PooledSpans, frame_features

        holder = getattr(self.pipeline, "embed", self.pipeline)          # the engine's PooledChunks
        frames = getattr(holder, "last_frames", None)
        holder.last_frames = None
        if frames is None or abs(frames.shape[1] - len(audio) / 320) > 2:
            frames = frame_features(embedder, audio)
        return PooledSpans(embedder, frames)

    def load(self) -> float:
        """Load the models now (they load on first use otherwise); the seconds it took, 0 when loaded."""
        import time

        if self._pipeline is not None:
            return 0.0
        t = time.monotonic()
        self.pipeline
        return time.monotonic() - t

    def restore(self, data: dict, *, channels: np.ndarray | None = None, picked: list[int] | None = None) -> Diarization:
        """A diarization from the step cache (``Diarization.to_json``), with the per-channel levels
        recomputed from ``channels`` (they are not cached)."""
        diar = Diarization.from_json(data)
        if channels is not None and self.channels != "mix" and diar.channel_owner:
            if self.channels != "auto":
                picked = _channels.pick_channels(self.channels, channels.shape[0])
            picked = [c for c in picked or [] if c < channels.shape[0]]
            diar.channel_levels = _channels.channel_levels(channels[picked])
        return diar


class _StepClock:
    """Seconds spent in each named step of one diarization, in order: a step ends when it is
    ``reached`` (pyannote's hook reports a step's batches and then its end, all under its name)."""

    def __init__(self):
        import time

        self._now = time.monotonic
        self._last = self._now()
        self.seconds: dict[str, float] = {}

    def reached(self, step: str) -> None:
        now = self._now()
        self.seconds[step] = self.seconds.get(step, 0.0) + now - self._last
        self._last = now


def _unpack(out) -> tuple["Annotation", "Annotation", np.ndarray | None]:
    """pyannote 4 returns DiarizeOutput; a legacy pipeline returns an Annotation."""
    if hasattr(out, "speaker_diarization"):
        return out.speaker_diarization, out.exclusive_speaker_diarization, out.speaker_embeddings
    return out, _exclusive_of(out), None


def _exclusive_of(ann: "Annotation") -> "Annotation":
    """Overlap-free turns from overlapping ones: in overlaps, the speaker whose turn is shorter wins
    (the interjection), as a fallback for pipelines that give no exclusive diarization."""
    from pyannote.core import Annotation, Segment

    bounds = sorted({t for seg in ann.get_timeline() for t in (seg.start, seg.end)})
    out = Annotation(uri=ann.uri)
    for a, b in zip(bounds, bounds[1:]):
        if b - a <= 0:
            continue
        mid = Segment(a, b)
        active = [(seg, label) for seg, _, label in ann.itertracks(yield_label=True)
                  if seg.start <= a and seg.end >= b]
        if active:
            seg, label = min(active, key=lambda x: x[0].duration)
            out[mid] = label
    return out.support()
