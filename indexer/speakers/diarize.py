"""Who speaks when, per take: pyannote's diarization pipeline with our CAM++ embeddings, and the
attribution of each recognised word to a local speaker.

The default models are pyannote segmentation-3.0 (local speaker activity in 10 s windows, up to 3
speakers each, overlap included) and CAM++ (``indexer.speakers.campplus``) as the speaker-embedding model of
``pyannote.audio``'s ``SpeakerDiarization`` pipeline (agglomerative clustering on cosine distance).
The audio arrives in memory (16 kHz mono float32, decoded once per file by the pipeline and shared
with speech recognition) and goes to pyannote as ``{"waveform", "sample_rate"}``.

pyannote decides who speaks in each 10 s window and clusters the windows' speakers across the take.
Two similar voices (the fixture shoot's two synthetic voices are the extreme case) can be one
speaker to the segmentation model inside a window; :func:`refine` then checks every local speaker on
utterance-level embeddings (one per stretch of exclusive speech) and splits it when its utterances
form two coherent, clearly different groups. :func:`split_by_known_voices` does the same for short
takes using the voices the registry already knows from other takes.

Output per take (:class:`Diarization`): speaker turns (a ``pyannote.core.Annotation``, overlap
included), exclusive turns (one speaker at a time, for attributing words), overlap regions, one
embedding per local speaker (for the production-wide voice registry, ``indexer.speakers.identity``) and, with
several channels, which channel each speaker dominates.

Words are attributed with :func:`attribute_words`; :func:`assign_lines` splits lines at speaker
changes and gives each line its speaker, a confidence and an overlap flag.

torch and pyannote are imported inside functions only.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

import numpy as np

from ..errors import ModelError, UsageError
from ..models.diarization import DiarizationModels
from ..records import Line, Shot, Word, shots_spanning

if TYPE_CHECKING:  # pragma: no cover
    from pyannote.core import Annotation, Timeline

SAMPLE_RATE = 16000

# Hyper-parameters of the default pipeline: pyannote 3.1's published values, with the clustering
# threshold (cosine distance between CAM++ centroids) checked on the AMI debug *train* files only
# (scripts/eval_diarization.py --tune): train DER is flat (25.6-26.4 %) from 0.55 to 0.90, so the
# published 0.70 stays; below 0.55 windows of one speaker split apart (38 % at 0.50).
DEFAULT_PARAMS: dict[str, Any] = {
    "segmentation": {"min_duration_off": 0.0},
    "clustering": {"method": "centroid", "min_cluster_size": 12, "threshold": 0.70},
}
SEGMENTATION_STEP = 0.1          # of the 10 s window: a new window every second (pyannote's default)
EMBED_MIN_SECONDS = 0.25         # shorter masked speech gives no embedding (NaN, ignored by clustering)
EMBED_BUCKET = 50                # fbank frames: speech is cropped to a multiple (<= 0.49 s lost), so
                                 # that lengths repeat: batches form and fewer kernel shapes are built

# Segment-level refinement (see refine()): every stretch of exclusive speech (cut into pieces of at
# most segment_max s) of at least short_min s gets its own CAM++ embedding; a local speaker whose
# segments of at least segment_min s form two clearly separate groups is split in two (recursively).
# Set on the fixture shoot's synthetic voices (within ~0.8, between ~0.6 cosine), checked on the AMI
# train files: no false split there for split_gap 0.10-0.20 (train DER unchanged).
# Then resegment(): long turns are re-read with sliding windows to find changes the segmentation
# missed. Train DER is the same for every change penalty from 0.1 to 1 (`eval_diarization.py --tune`);
# 0.25 is set a priori (half the per-window gap between same- and other-speaker cosine on AMI).
# Repeated until nothing changes (the speakers' embeddings, recomputed from their segments, get purer
# each pass), it takes AMI dev+test DER from 51.9 % to 47.5 %; train and the fixture shoot unchanged.
REFINE: dict[str, float] = {
    "segment_min": 1.0, "segment_max": 6.0, "short_min": 0.5,
    "split_gap": 0.15,          # mean within-group similarity must exceed the between-group one by this
    "split_within": 0.70,       # ... and each group must be this coherent (mean cosine similarity)
    "split_seconds": 3.0,       # ... and hold this much speech
    "split_segments": 4,        # a speaker needs this many embedded segments to be tested
    "known_margin": 0.10,       # split_by_known_voices: best voice must beat the second by this
    "known_seconds": 1.5,       # ... on segments at least this long
    # resegment(): long turns re-read with sliding CAM++ windows against the local speakers
    "reseg_window": 1.5,        # s of speech per window
    "reseg_hop": 0.5,           # s between windows
    "reseg_penalty": 0.25,      # cosine similarity a change of speaker must gain over the turn (Viterbi)
    "reseg_min_turn": 2.5,      # turns shorter than this are left as they are
    "reseg_passes": 3,          # re-read until nothing changes, at most this often (AMI: 2 passes)
    # reread(): every exclusive turn re-read against the voices of the *other* takes (see reread())
    "reread_min": 0.3,          # turns shorter than this keep their speaker (one window of the whole turn below 1.5 s)
    "reread_bias": 0.17,        # a window's similarity to its own take's speaker counts this much less:
                                # the session gap on the AMI train files' reference turns (0.173,
                                # eval_diarization.py --tune); train identity is flat from 0 to 0.17,
                                # its one-to-one identity best at 0.17 (see tune() there)
}

# Attribution of words.
NEAR_CHANGE = 0.30               # a word this close (s) to a change of speaker gets a lower confidence
OVERLAP_SHARE = 0.25             # a word this much inside overlapped speech is flagged ``overlap``
GAP_REACH = 0.60                 # a word in a gap between turns takes the nearest turn within this reach


# ------------------------------------------------------------------------------------------------
# records
# ------------------------------------------------------------------------------------------------

@dataclass
class LocalSpeaker:
    """A speaker as one take's diarization sees it (``label``), with what identifies the voice."""

    label: str
    embedding: np.ndarray | None         # (192,) float32, unit length; None when none could be made
    seconds: float                       # exclusive speech time in the take
    channel: int | None = None           # the channel this speaker dominates (iso/lav), if any


@dataclass
class SpeechSegment:
    """A stretch of one speaker's exclusive speech with its own CAM++ embedding (unit length)."""

    start: float
    end: float
    label: str
    embedding: np.ndarray | None

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class Windows:
    """CAM++ embeddings of short windows of exclusive speech (``reseg_window`` s every ``reseg_hop`` s,
    one window of the whole turn when it is shorter): what :func:`reread` matches against the voices
    of the other takes."""

    start: np.ndarray                    # (N,) s
    length: np.ndarray                   # (N,) s
    emb: np.ndarray                      # (N, D) float32, unit rows (zero rows: no embedding)

    def to_json(self) -> dict[str, Any]:
        import base64

        return {"start": [round(float(v), 3) for v in self.start], "length": [round(float(v), 3) for v in self.length],
                "dim": int(self.emb.shape[1]),
                "emb_f16": base64.b64encode(self.emb.astype("<f2").tobytes()).decode("ascii")}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Windows":
        import base64

        emb = np.frombuffer(base64.b64decode(d["emb_f16"]), dtype="<f2").astype(np.float32)
        return cls(np.asarray(d["start"], dtype=np.float64), np.asarray(d["length"], dtype=np.float64),
                   emb.reshape(-1, int(d["dim"])))


@dataclass
class Diarization:
    turns: "Annotation"                  # speaker turns, overlap included
    exclusive: "Annotation"              # one speaker at a time
    speakers: list[LocalSpeaker]
    duration: float
    channel_owner: dict[int, str] = field(default_factory=dict)   # channel index -> local label
    channel_levels: np.ndarray | None = None   # (C, frames) level in dB, 10 ms frames
    segments: list[SpeechSegment] = field(default_factory=list)
    windows: Windows | None = None

    @property
    def labels(self) -> list[str]:
        return [s.label for s in self.speakers]

    def overlap(self) -> "Timeline":
        return self.turns.get_overlap()

    def embedding(self, label: str) -> np.ndarray | None:
        for s in self.speakers:
            if s.label == label:
                return s.embedding
        return None

    # ---- (de)serialisation for the per-take step cache
    def to_json(self) -> dict[str, Any]:
        return {
            "duration": round(self.duration, 3),
            "turns": _turns_json(self.turns),
            "exclusive": _turns_json(self.exclusive),
            "speakers": [{"label": s.label, "seconds": round(s.seconds, 3), "channel": s.channel,
                          "embedding": None if s.embedding is None else [round(float(v), 6) for v in s.embedding]}
                         for s in self.speakers],
            "channel_owner": {str(k): v for k, v in self.channel_owner.items()},
            "segments": [[round(g.start, 3), round(g.end, 3), g.label,
                          None if g.embedding is None else [round(float(v), 5) for v in g.embedding]]
                         for g in self.segments],
            "windows": None if self.windows is None else self.windows.to_json(),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Diarization":
        return cls(
            turns=_turns_from_json(d["turns"]), exclusive=_turns_from_json(d["exclusive"]),
            speakers=[LocalSpeaker(s["label"], None if s["embedding"] is None else
                                   np.asarray(s["embedding"], dtype=np.float32), s["seconds"], s.get("channel"))
                      for s in d["speakers"]],
            duration=d["duration"], channel_owner={int(k): v for k, v in d.get("channel_owner", {}).items()},
            segments=[SpeechSegment(a, b, lab, None if e is None else np.asarray(e, dtype=np.float32))
                      for a, b, lab, e in d.get("segments", [])],
            windows=Windows.from_json(d["windows"]) if d.get("windows") else None)


def _turns_json(ann: "Annotation") -> list[list]:
    return [[round(seg.start, 3), round(seg.end, 3), str(label)] for seg, _, label in ann.itertracks(yield_label=True)]


def _turns_from_json(rows: list[list]) -> "Annotation":
    from pyannote.core import Annotation, Segment

    ann = Annotation()
    for k, (start, end, label) in enumerate(rows):
        ann[Segment(start, end), k] = label
    return ann


@dataclass
class WordSpeaker:
    """Who said one word, how sure we are (0..1), and whether it was in overlapped speech."""

    speaker: str | None
    confidence: float
    overlap: bool


@dataclass
class LineSpeaker:
    speaker: str | None
    confidence: float | None
    overlap: bool
    words: list[WordSpeaker]


# ------------------------------------------------------------------------------------------------
# CAM++ as pyannote's embedding model
# ------------------------------------------------------------------------------------------------

class CamppPyannoteEmbedding:
    """pyannote's speaker-embedding interface over :class:`indexer.speakers.campplus.CamppEmbedder`.

    ``__call__(waveforms (B, 1, N), masks (B, F))`` embeds, for each item, the fbank frames where the
    mask (the local speaker's activity in the chunk) is on; frames are mean-normalised over the
    selected frames. Too little speech gives a NaN row, which pyannote's clustering leaves out.
    """

    sample_rate = SAMPLE_RATE
    metric = "cosine"

    def __init__(self, embedder):
        self.embedder = embedder
        self.dimension = 192
        self.min_num_samples = int(EMBED_MIN_SECONDS * SAMPLE_RATE)
        self._last: tuple[Any, Any] | None = None

    def to(self, device):
        return self

    def __call__(self, waveforms, masks=None):
        import torch

        from .campplus import fbank

        out_feats = []
        for b in range(waveforms.shape[0]):
            wav = waveforms[b, 0].cpu()     # fbank on the CPU: on a GPU, its many small kernels are slower
            if self._last is not None and self._last[0].shape == wav.shape and torch.equal(self._last[0], wav):
                raw = self._last[1]
            else:
                raw = fbank(wav, normalize=False)
                self._last = (wav, raw)
            if masks is None:
                sel = raw
            else:
                m = torch.as_tensor(masks[b]).cpu().float()[None, None]
                on = torch.nn.functional.interpolate(m, size=raw.shape[0], mode="nearest")[0, 0] > 0.5
                sel = raw[on]
            if sel.shape[0] < int(EMBED_MIN_SECONDS / 0.01):
                out_feats.append(raw[:0])
                continue
            if sel.shape[0] >= EMBED_BUCKET:     # equal lengths batch together (see embed_features)
                sel = sel[: sel.shape[0] // EMBED_BUCKET * EMBED_BUCKET]
            out_feats.append(sel - sel.mean(dim=0, keepdim=True))
        return self.embedder.embed_features(out_feats)


@contextlib.contextmanager
def _pyannote_with_our_embedding(embedding):
    """Let pyannote's SpeakerDiarization take our embedding object and no PLDA (agglomerative
    clustering needs none): its constructor otherwise resolves both from the Hugging Face hub."""
    from pyannote.audio.pipelines import speaker_diarization as sd

    saved = sd.PretrainedSpeakerEmbedding, sd.get_plda
    sd.PretrainedSpeakerEmbedding = lambda *a, **k: embedding
    sd.get_plda = lambda *a, **k: None
    try:
        yield sd.SpeakerDiarization
    finally:
        sd.PretrainedSpeakerEmbedding, sd.get_plda = saved


GPU_BATCH = 32                   # segmentation and embedding batches on a GPU


def _load_failure(exc: Exception) -> str:
    """Why pyannote could not load a pipeline, in a few words. A local path in its config.yaml that
    does not exist reaches pyannote's hub client as a repository name, whose complaint names the path."""
    import re

    text = str(exc).splitlines()[0] if str(exc) else ""
    for path in re.findall(r"'([~./][^']*)'", text):
        if not Path(path).expanduser().exists():
            return f"{path}, named in its config.yaml, does not exist"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def build_pipeline(models: DiarizationModels, *, params: dict | None = None, threads: int | None = None,
                   segmentation_step: float = SEGMENTATION_STEP, embedding_batch_size: int = 12,
                   segmentation_batch_size: int = 4, device: str = "cpu"):
    """pyannote's SpeakerDiarization with segmentation-3.0 and CAM++ (or a pyannote pipeline).

    Batch sizes bound memory: a segmentation batch holds 80 SincNet channels at the sample rate
    (~50 MB per 10 s window), a CAM++ batch ~20 MB per 1000 frames in its first layers; these sizes
    keep the peak near 1.7 GB (of which ~1.1 GB is the libraries) and are as fast as larger ones.
    """
    import torch

    if threads:
        torch.set_num_threads(threads)
    if models.kind == "pipeline":
        from pyannote.audio import Pipeline

        try:
            pipe = Pipeline.from_pretrained(models.pipeline, token=models.token)
        except Exception as exc:
            raise ModelError(f"Cannot load the diarization pipeline {models.pipeline} ({_load_failure(exc)}).") from None
        if pipe is None:
            raise ModelError(f"Cannot load the diarization pipeline {models.pipeline} (gated or not found; "
                             "set HF_TOKEN).")
        return pipe.to(torch.device(device)) if device != "cpu" else pipe

    from pyannote.audio import Model

    from .campplus import CamppEmbedder

    try:
        seg_model = Model.from_pretrained(models.segmentation)
    except Exception as exc:
        raise ModelError(f"{models.segmentation}: cannot load the segmentation model ({type(exc).__name__}).") from None
    embedder = CamppEmbedder(models.embedding, verify=False, device=device)   # checksum verified by diarization.resolve
    with _pyannote_with_our_embedding(CamppPyannoteEmbedding(embedder)) as SpeakerDiarization:
        pipe = SpeakerDiarization(segmentation=seg_model, segmentation_step=segmentation_step,
                                  embedding="campplus", embedding_exclude_overlap=True, plda=None,
                                  clustering="AgglomerativeClustering",
                                  embedding_batch_size=embedding_batch_size,
                                  segmentation_batch_size=segmentation_batch_size)
    pipe.instantiate(params or DEFAULT_PARAMS)
    if device != "cpu":
        # segmentation-3.0 on the GPU (CAM++ is there already; fbank features are made on the CPU and
        # batched onto the GPU by CamppEmbedder.embed_features), in larger batches. On an H200,
        # scripts/bench_diarization_device.py: 210 s of sound in 11.1 s against 26.0 s on 16 CPU
        # threads, with the same turns.
        pipe.segmentation_batch_size = max(segmentation_batch_size, GPU_BATCH)
        pipe.embedding_batch_size = max(embedding_batch_size, GPU_BATCH)
        pipe.to(torch.device(device))
    return pipe


# ------------------------------------------------------------------------------------------------
# the diarizer
# ------------------------------------------------------------------------------------------------

def parse_channels(value: str | None) -> str | list[int]:
    """``mix`` | ``each`` | ``N,M`` (1-based channel numbers) -> "mix", "each" or [0-based indexes]."""
    v = (value or "mix").strip().lower()
    if v in ("mix", "each"):
        return v
    try:
        picked = [int(x) for x in v.replace(" ", "").split(",") if x]
    except ValueError:
        picked = []
    if not picked or min(picked) < 1:
        raise UsageError(f"--channels {value!r}: use mix, each, or channel numbers like 1,2.")
    return [p - 1 for p in picked]


class Diarizer:
    """Diarizes takes; the models are loaded on first use and kept for the run."""

    def __init__(self, models: DiarizationModels, *, params: dict | None = None, threads: int | None = None,
                 channels: str = "mix", segmentation_step: float = SEGMENTATION_STEP, refine: bool = True,
                 device: str | None = "cpu"):
        self.models = models
        self.device = device or "cpu"           # cpu | cuda | auto (resolved when the models load)
        self.refine = refine
        self.params = params or DEFAULT_PARAMS
        self.threads = threads
        self.channels = parse_channels(channels)
        self.channels_spec = channels or "mix"
        self.segmentation_step = segmentation_step
        self._pipeline = None
        self.last_timings: dict[str, float] = {}    # seconds per step of the last call (the bench's profile)

    @property
    def pipeline(self):
        if self._pipeline is None:
            from ..config import torch_device

            self.device = torch_device(self.device, "speaker diarization")
            self._pipeline = build_pipeline(self.models, params=self.params, threads=self.threads,
                                            segmentation_step=self.segmentation_step, device=self.device)
        return self._pipeline

    @property
    def embedding_model(self) -> str:
        """What made the speakers' embeddings (the voice registry never mixes models)."""
        from .campplus import NAME

        return NAME if self.models.kind == "default" else f"pipeline:{self.models.pipeline}"

    def describe(self) -> dict[str, Any]:
        from importlib.metadata import version     # not pyannote.audio.__version__: importing it costs seconds

        return {**self.models.describe(), "pyannote.audio": version("pyannote.audio"),
                "params": self.params if self.models.kind == "default" else None,
                "segmentation_step": self.segmentation_step, "channels": self.channels_spec,
                "embed_min_seconds": EMBED_MIN_SECONDS,
                "refine": REFINE if self.refine and self.models.kind == "default" else None}

    def key(self) -> str:
        """Identifies the settings (for the resume cache): same key, same result."""
        import json

        d = self.describe()
        d.pop("pyannote.audio", None)
        return json.dumps(d, sort_keys=True)

    def __call__(self, audio: np.ndarray, *, channels: np.ndarray | None = None,
                 progress: Callable[[str, float, float], None] | None = None, uri: str = "take") -> Diarization:
        """Diarize 16 kHz mono ``audio``; ``channels`` (C, n) enables per-channel attribution when the
        diarizer was made with ``channels='each'`` or a channel list."""
        import torch

        if channels is not None and self.channels != "mix":
            picked = range(channels.shape[0]) if self.channels == "each" else \
                [c for c in self.channels if c < channels.shape[0]]
            picked = list(picked)
            if not picked:
                raise UsageError(f"--channels {self.channels_spec}: the file has {channels.shape[0]} channel(s).")
            chan = channels[picked]
            if isinstance(self.channels, list):
                audio = chan.mean(axis=0)
        else:
            picked, chan = [], None
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        duration = len(audio) / SAMPLE_RATE
        if duration < 0.5:
            from pyannote.core import Annotation

            return Diarization(Annotation(), Annotation(), [], duration)

        file = {"waveform": torch.from_numpy(audio)[None], "sample_rate": SAMPLE_RATE, "uri": uri}
        pipeline = self.pipeline
        clock = _StepClock()

        def hook(step, artefact, file=None, total=None, completed=None):
            # pyannote names a step when it ends; "discrete_diarization" ends the clustering
            clock.reached({"discrete_diarization": "clustering"}.get(step, step))
            if progress is not None and total:
                progress(step, float(completed or 0), float(total))
        out = pipeline(file, hook=hook)
        turns, exclusive, centroids = _unpack(out)
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
        embedder = getattr(getattr(self.pipeline, "_embedding", None), "embedder", None)
        if embedder is not None and self.refine:
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
            _channel_owners(diar, chan, picked)
            clock.reached("channels")
        self.last_timings = clock.seconds
        return diar

    def load(self) -> float:
        """Load the models now (they load on first use otherwise); the seconds it took, 0 when loaded."""
        import time

        if self._pipeline is not None:
            return 0.0
        t = time.monotonic()
        self.pipeline
        return time.monotonic() - t


    def restore(self, data: dict, *, channels: np.ndarray | None = None) -> Diarization:
        """A diarization from the step cache (``Diarization.to_json``), with the per-channel levels
        recomputed from ``channels`` (they are not cached)."""
        diar = Diarization.from_json(data)
        if channels is not None and self.channels != "mix" and diar.channel_owner:
            picked = list(range(channels.shape[0])) if self.channels == "each" else \
                [c for c in self.channels if c < channels.shape[0]]
            diar.channel_levels = channel_levels(channels[picked])
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


# ------------------------------------------------------------------------------------------------
# segment-level refinement
# ------------------------------------------------------------------------------------------------

def speech_segments(exclusive: "Annotation", audio: np.ndarray, embedder, *,
                    minimum: float | None = None) -> list[SpeechSegment]:
    """Exclusive turns as segments (long ones cut into equal pieces of at most ``segment_max`` s),
    each embedded with CAM++ when it lasts at least ``minimum`` seconds."""
    from .campplus import fbank

    minimum = REFINE["short_min"] if minimum is None else minimum
    out: list[SpeechSegment] = []
    for seg, _, label in exclusive.itertracks(yield_label=True):
        n = max(1, int(math.ceil(seg.duration / REFINE["segment_max"])))
        for k in range(n):
            a = seg.start + k * seg.duration / n
            b = seg.start + (k + 1) * seg.duration / n
            out.append(SpeechSegment(float(a), float(b), str(label), None))
    todo = [g for g in out if g.seconds >= minimum]
    if todo:
        feats = [fbank(audio[int(g.start * SAMPLE_RATE): int(g.end * SAMPLE_RATE)]) for g in todo]
        embs = embedder.embed_features(feats, bucket=EMBED_BUCKET)
        for g, e in zip(todo, embs):
            n = float(np.linalg.norm(e))
            g.embedding = (e / n).astype(np.float32) if np.isfinite(n) and n > 0 else None
    out.sort(key=lambda g: g.start)
    return out


def _split_groups(embs: np.ndarray, secs: np.ndarray) -> list[list[int]]:
    """Recursively split a speaker's segments in two while the halves are clearly different voices."""
    n = len(embs)
    if n < REFINE["split_segments"]:
        return [list(range(n))]
    from scipy.cluster.hierarchy import fcluster, linkage

    z = linkage(embs, method="average", metric="cosine")
    part = fcluster(z, 2, criterion="maxclust")
    g1 = [i for i in range(n) if part[i] == 1]
    g2 = [i for i in range(n) if part[i] == 2]
    if len(g1) < 2 or len(g2) < 2 or secs[g1].sum() < REFINE["split_seconds"] or secs[g2].sum() < REFINE["split_seconds"]:
        return [list(range(n))]
    sim = embs @ embs.T

    def within(g):
        return float(sim[np.ix_(g, g)][np.triu_indices(len(g), 1)].mean())

    w = min(within(g1), within(g2))
    between = float(sim[np.ix_(g1, g2)].mean())
    if w < REFINE["split_within"] or w - between < REFINE["split_gap"]:
        return [list(range(n))]
    out = []
    for g in (g1, g2):
        out.extend([[g[i] for i in sub] for sub in _split_groups(embs[g], secs[g])])
    return out


def refine(diar: Diarization, audio: np.ndarray, embedder) -> Diarization:
    """Check each local speaker on segment-level embeddings and split the ones that are two voices.

    pyannote's segmentation can take two similar voices for one within its 10 s windows; a segment
    embedding sees a whole utterance of one voice, which tells them apart when the window-level
    view cannot. Also gives every speaker an utterance-level embedding (for the voice registry).
    """
    segments = speech_segments(diar.exclusive, audio, embedder)
    new_label = {i: g.label for i, g in enumerate(segments)}
    names = _label_factory(diar.labels)
    for label in list(diar.labels):
        idx = [i for i, g in enumerate(segments) if g.label == label and g.embedding is not None
               and g.seconds >= REFINE["segment_min"]]
        if len(idx) < REFINE["split_segments"]:
            continue
        embs = np.stack([segments[i].embedding for i in idx])
        secs = np.array([segments[i].seconds for i in idx])
        groups = _split_groups(embs, secs)
        if len(groups) < 2:
            continue
        groups.sort(key=lambda g: -secs[g].sum())          # the main group keeps the label
        for k, g in enumerate(groups):
            lab = label if k == 0 else names()
            for j in g:
                new_label[idx[j]] = lab
        _assign_rest(segments, new_label, label, [[idx[j] for j in g] for g in groups])
    return relabel(diar, segments, new_label)


def _viterbi(scores: np.ndarray, penalty: float) -> np.ndarray:
    """Best state per row of ``scores`` (windows x speakers) when every change of state costs ``penalty``."""
    n, k = scores.shape
    total = scores[0].astype(np.float64)
    back = np.zeros((n, k), dtype=np.int64)
    for t in range(1, n):
        best = int(total.argmax())
        switch = total[best] - penalty
        stay = total >= switch
        back[t] = np.where(stay, np.arange(k), best)
        total = np.where(stay, total, switch) + scores[t]
    path = np.empty(n, dtype=np.int64)
    path[-1] = int(total.argmax())
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def _window_embeddings(audio: np.ndarray, windows: list[tuple[float, float]], embedder,
                       cache: dict | None = None, *, chunk: int = 256) -> np.ndarray:
    """Unit CAM++ embeddings of ``windows`` ((start, length) in s) of ``audio``; a row of zeros where
    none could be made. ``cache`` (keyed by window) saves recomputing the windows of an unchanged turn."""
    from .campplus import fbank

    cache = {} if cache is None else cache
    keys = [(int(round(t * SAMPLE_RATE)), int(round(n * SAMPLE_RATE))) for t, n in windows]
    todo = sorted({k for k in keys if k not in cache})
    for i in range(0, len(todo), chunk):            # fbank of a chunk at a time: memory stays small
        part = todo[i:i + chunk]
        feats = [fbank(audio[a: a + n]) for a, n in part]
        for k, e in zip(part, embedder.embed_features(feats)):
            norm = float(np.linalg.norm(e))
            cache[k] = (e / norm).astype(np.float32) if np.isfinite(norm) and norm > 0 else None
    dim = next((cache[k].shape[0] for k in keys if cache[k] is not None), 192)
    return np.stack([cache[k] if cache[k] is not None else np.zeros(dim, np.float32) for k in keys]) \
        if keys else np.zeros((0, dim), np.float32)


def speech_windows(diar: Diarization, audio: np.ndarray, embedder, cache: dict | None = None) -> Windows:
    """Windows over every exclusive turn of at least ``reread_min`` s (see :class:`Windows`)."""
    win, hop = REFINE["reseg_window"], REFINE["reseg_hop"]
    spans: list[tuple[float, float]] = []
    for seg, _, _ in diar.exclusive.itertracks(yield_label=True):
        if seg.duration < REFINE["reread_min"]:
            continue
        if seg.duration < win:
            spans.append((float(seg.start), float(seg.duration)))
        else:
            spans.extend((float(t), win) for t in np.arange(seg.start, seg.end - win + 1e-6, hop))
    embs = _window_embeddings(audio, spans, embedder, cache)
    return Windows(np.array([t for t, _ in spans], dtype=np.float64),
                   np.array([n for _, n in spans], dtype=np.float64), embs)


def resegment(diar: Diarization, audio: np.ndarray, embedder, *, chunk: int = 256,
              cache: dict | None = None) -> Diarization:
    """Find the speaker changes pyannote's segmentation missed inside long turns.

    In quick exchanges between two similar voices, the segmentation model can run several replies
    into one turn (AMI dev00: 13 s of alternating speakers as one). Each turn of at least
    ``reseg_min_turn`` s is re-read with CAM++ windows (``reseg_window`` s every ``reseg_hop`` s),
    each scored against the file's local speakers; the best path through the turn, where a change
    of speaker costs ``reseg_penalty`` of cosine similarity, gives the speaker of each stretch.
    Nothing changes where the turn's own speaker stays the best match. Needs two local speakers.
    """
    known = [s for s in diar.speakers if s.embedding is not None]
    if len(known) < 2 or not diar.segments:
        return diar
    names = [s.label for s in known]
    cents = np.stack([s.embedding for s in known]).astype(np.float32)
    win, hop, penalty = REFINE["reseg_window"], REFINE["reseg_hop"], REFINE["reseg_penalty"]
    turns = [(seg.start, seg.end, lab) for seg, _, lab in diar.exclusive.itertracks(yield_label=True)
             if seg.duration >= REFINE["reseg_min_turn"] and lab in names]
    starts = [np.arange(a, b - win + 1e-6, hop) for a, b, _ in turns]
    flat = [(float(t), win) for st in starts for t in st]
    if not flat:
        return diar
    embs = _window_embeddings(audio, flat, embedder, cache, chunk=chunk)
    # per turn: runs (start, end, label, window rows, the turn's label)
    runs: list[tuple[float, float, str, np.ndarray, str]] = []
    row = 0
    for (a, b, lab), st in zip(turns, starts):
        rows = np.arange(row, row + len(st))
        row += len(st)
        path = _viterbi(embs[rows] @ cents.T, penalty)
        if not (path == names.index(lab)).all():
            runs.extend(_runs_of(path, st + win / 2, rows, a, b, names, lab))
    if not runs:
        return diar
    return _apply_runs(diar, runs, embs)


def _runs_of(path: np.ndarray, centres: np.ndarray, rows: np.ndarray, a: float, b: float, names: list[str],
             old: str) -> list[tuple[float, float, str, np.ndarray, str]]:
    """A turn [a, b) of speaker ``old`` cut where the Viterbi ``path`` over its windows changes state."""
    cuts = [a] + [float((centres[i] + centres[i + 1]) / 2) for i in range(len(path) - 1)
                  if path[i] != path[i + 1]] + [b]
    firsts = [0] + [i + 1 for i in range(len(path) - 1) if path[i] != path[i + 1]] + [len(path)]
    return [(cuts[j], cuts[j + 1], names[path[firsts[j]]], rows[firsts[j]:firsts[j + 1]], old)
            for j in range(len(cuts) - 1)]


def _apply_runs(diar: Diarization, runs: list[tuple[float, float, str, np.ndarray, str]],
                embs: np.ndarray) -> Diarization:
    """``diar`` with each run (start, end, label, window rows, the turn's old label) given to its
    label: segments are cut at the runs' edges and embedded from their windows; overlapped turns kept."""
    from pyannote.core import Annotation, Segment, Timeline

    segs: list[SpeechSegment] = []
    for g in diar.segments:
        inside = [r for r in runs if r[1] > g.start and r[0] < g.end]
        if not inside or (len(inside) == 1 and inside[0][2] == g.label):
            segs.append(g)
            continue
        for a, b, lab, rows, _ in inside:
            a, b = max(a, g.start), min(b, g.end)
            if b - a <= 0:
                continue
            c = embs[rows].sum(axis=0)
            n = float(np.linalg.norm(c))
            segs.append(SpeechSegment(a, b, lab, (c / n).astype(np.float32) if n > 0 else None))
    exclusive = Annotation(uri=diar.exclusive.uri)
    for k, g in enumerate(segs):
        exclusive[Segment(g.start, g.end), k] = g.label
    # Turns: a stretch given to another speaker moves to that speaker's turns, except where that
    # speaker already talks (overlapped speech, which the exclusive view gives to one of the two):
    # there both turns stay as they were.
    spoken = {lab: diar.turns.label_timeline(lab, copy=True).support() for lab in diar.turns.labels()}
    for a, b, lab, _, old in runs:
        if lab == old:
            continue
        spoken.setdefault(lab, Timeline())
        free = Timeline([Segment(a, b)]).extrude(spoken[lab])
        spoken[old] = spoken.get(old, Timeline()).extrude(free)
        spoken[lab] = spoken[lab].union(free).support()
    turns = Annotation(uri=diar.turns.uri)
    for lab, tl in spoken.items():
        for k, seg in enumerate(tl):
            turns[seg, k] = lab
    return _rebuilt(diar, turns, exclusive.support(collar=0.0), segs)


def _label_factory(existing: list[str]):
    used = set(existing)
    counter = [0]

    def make() -> str:
        while f"SPEAKER_{counter[0]:02d}" in used:
            counter[0] += 1
        lab = f"SPEAKER_{counter[0]:02d}"
        used.add(lab)
        return lab

    return make


def _assign_rest(segments: list[SpeechSegment], new_label: dict[int, str], old: str,
                 groups: list[list[int]]) -> None:
    """Segments of a split speaker that were not part of the test go to the closest group: by
    embedding when they have one, else to the group of the nearest tested segment in time."""
    members = {k for g in groups for k in g}
    cents = []
    for g in groups:
        c = np.mean([segments[k].embedding for k in g], axis=0)
        cents.append(c / np.linalg.norm(c))
    for i, seg in enumerate(segments):
        if seg.label != old or i in members:
            continue
        if seg.embedding is not None:
            best = int(np.argmax([float(seg.embedding @ c) for c in cents]))
        else:
            mid = (seg.start + seg.end) / 2
            best = min(range(len(groups)), key=lambda gi: min(
                abs(mid - (segments[k].start + segments[k].end) / 2) for k in groups[gi]))
        new_label[i] = new_label[groups[best][0]]


def relabel(diar: Diarization, segments: list[SpeechSegment], new_label: dict[int, str]) -> Diarization:
    """A diarization whose exclusive turns take the segments' new labels; overlapped turns follow
    (a split speaker's turn takes, piece by piece, the label of the exclusive speech it covers, and
    the nearest one in time where it covers none). Speakers get utterance-level embeddings."""
    from pyannote.core import Annotation, Segment, Timeline

    segs = [SpeechSegment(g.start, g.end, new_label.get(i, g.label), g.embedding) for i, g in enumerate(segments)]
    split_from = {g.label for i, g in enumerate(segments) if new_label.get(i, g.label) != g.label}
    exclusive = Annotation(uri=diar.exclusive.uri)
    for k, g in enumerate(segs):
        exclusive[Segment(g.start, g.end), k] = g.label
    exclusive = exclusive.support(collar=0.0)

    families: dict[str, list[SpeechSegment]] = {}
    for old_seg, new_seg in zip(segments, segs):
        families.setdefault(old_seg.label, []).append(new_seg)
    turns = Annotation(uri=diar.turns.uri)
    k = 0
    for seg, _, label in diar.turns.itertracks(yield_label=True):
        if label not in split_from:
            turns[seg, k] = label
            k += 1
            continue
        family = [g for g in families.get(label, []) if g.end > seg.start and g.start < seg.end] \
            or families.get(label, [])
        covered = Timeline()
        for g in family:
            part = seg & Segment(g.start, g.end)
            if part and part.duration > 0:
                turns[part, k] = g.label
                k += 1
                covered.add(part)
        for gap in Timeline([seg]).extrude(covered.support()):
            if gap.duration <= 0 or not family:
                continue
            mid = (gap.start + gap.end) / 2
            near = min(family, key=lambda g: abs(mid - (g.start + g.end) / 2))
            turns[gap, k] = near.label
            k += 1
    return _rebuilt(diar, turns.support(collar=0.0), exclusive, segs)


def _rebuilt(diar: Diarization, turns: "Annotation", exclusive: "Annotation",
             segs: list[SpeechSegment]) -> Diarization:
    """``diar`` with new turns and segments; each speaker's embedding is the duration-weighted mean
    of its segments' (its old one when it has no embedded segment)."""
    speakers = []
    old = {s.label: s for s in diar.speakers}
    for label in turns.labels():
        mine = [g for g in segs if g.label == label and g.embedding is not None]
        if mine:
            w = np.array([min(g.seconds, REFINE["segment_max"]) for g in mine])
            c = (np.stack([g.embedding for g in mine]) * w[:, None]).sum(axis=0)
            emb = (c / np.linalg.norm(c)).astype(np.float32)
        else:
            emb = old[label].embedding if label in old else None
        speakers.append(LocalSpeaker(str(label), emb, float(exclusive.label_duration(label))))
    return Diarization(turns, exclusive, speakers, diar.duration, dict(diar.channel_owner),
                       diar.channel_levels, segs, diar.windows)


def split_by_known_voices(diar: Diarization, centroids: np.ndarray, threshold: float) -> Diarization:
    """Split a local speaker whose segments clearly belong to different voices already known to the
    registry (``centroids``: unit rows, one per voice, from the other takes). Helps short takes,
    where there are too few segments for :func:`refine` to tell two similar voices apart."""
    if centroids is None or len(centroids) < 2 or not diar.segments:
        return diar
    segments = diar.segments
    new_label = {i: g.label for i, g in enumerate(segments)}
    names = _label_factory(diar.labels)
    changed = False
    for label in diar.labels:
        idx = [i for i, g in enumerate(segments) if g.label == label and g.embedding is not None
               and g.seconds >= REFINE["known_seconds"]]
        votes: dict[int, list[int]] = {}
        for i in idx:
            sims = centroids @ segments[i].embedding
            order = np.argsort(-sims)
            if sims[order[0]] >= threshold and sims[order[0]] - sims[order[1]] >= REFINE["known_margin"]:
                votes.setdefault(int(order[0]), []).append(i)
        if len(votes) < 2:
            continue
        groups = sorted(votes.values(), key=lambda g: -sum(segments[i].seconds for i in g))
        for k, g in enumerate(groups):
            lab = label if k == 0 else names()
            for i in g:
                new_label[i] = lab
        _assign_rest(segments, new_label, label, groups)
        changed = True
    return relabel(diar, segments, new_label) if changed else diar


# ------------------------------------------------------------------------------------------------
# channels (boom + lavs / iso tracks)
# ------------------------------------------------------------------------------------------------

FRAME = 0.01
OWNER_DB = 10.0          # a lav is typically 15-30 dB louder on its wearer than on the other actors


def channel_levels(chan: np.ndarray) -> np.ndarray:
    """(C, frames) level of each channel in dB, 10 ms frames."""
    hop = int(SAMPLE_RATE * FRAME)
    n = chan.shape[1] // hop
    if n == 0:
        return np.zeros((chan.shape[0], 0))
    power = np.square(chan[:, : n * hop].astype(np.float64)).reshape(chan.shape[0], n, hop).mean(axis=2)
    return 10 * np.log10(np.maximum(power, 1e-10))


def _channel_owners(diar: Diarization, chan: np.ndarray, picked: list[int]) -> None:
    """Which local speaker each channel belongs to: a lav/iso channel is markedly louder
    (``OWNER_DB``) while its wearer speaks than while anyone else does; a boom is not."""
    levels = channel_levels(chan)
    diar.channel_levels = levels
    nfr = levels.shape[1]
    masks = {}
    for label in diar.labels:
        m = np.zeros(nfr, dtype=bool)
        for seg in diar.exclusive.label_timeline(label):
            m[int(seg.start / FRAME): min(nfr, int(math.ceil(seg.end / FRAME)))] = True
        masks[label] = m
    for row, c in enumerate(picked):
        med = {lab: float(np.median(levels[row, m])) for lab, m in masks.items() if m.sum() >= 20}
        if len(med) < 2:
            continue
        ranked = sorted(med.items(), key=lambda kv: kv[1], reverse=True)
        (best, lv), (_, second) = ranked[0], ranked[1]
        if lv - second >= OWNER_DB:
            diar.channel_owner[row] = best
            for s in diar.speakers:
                if s.label == best and s.channel is None:
                    s.channel = c


# ------------------------------------------------------------------------------------------------
# attributing words
# ------------------------------------------------------------------------------------------------

def _intervals(ann: "Annotation") -> dict[str, list[tuple[float, float]]]:
    """Each label's turns as sorted, merged (start, end) intervals."""
    out: dict[str, list[tuple[float, float]]] = {}
    for seg, _, label in ann.itertracks(yield_label=True):
        out.setdefault(str(label), []).append((seg.start, seg.end))
    return {lab: _merged(iv) for lab, iv in out.items()}


def _merged(iv: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for s, e in sorted(iv):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(a, b) for a, b in out]


def _covered(iv: list[tuple[float, float]], a: float, b: float) -> float:
    """Seconds of [a, b] inside sorted, disjoint intervals ``iv``."""
    import bisect

    k = max(0, bisect.bisect_right(iv, (a, math.inf)) - 1)
    total = 0.0
    while k < len(iv) and iv[k][0] < b:
        total += max(0.0, min(b, iv[k][1]) - max(a, iv[k][0]))
        k += 1
    return total


def _distance(iv: list[tuple[float, float]], t: float) -> float:
    """Distance from ``t`` to sorted, disjoint intervals ``iv`` (0 inside one)."""
    import bisect

    k = bisect.bisect_right(iv, (t, math.inf))
    best = math.inf
    for j in (k - 1, k):
        if 0 <= j < len(iv):
            s, e = iv[j]
            best = min(best, 0.0 if s <= t <= e else (s - t if t < s else t - e))
    return best


def attribute_words(words: list[Word], diar: Diarization | None) -> list[WordSpeaker]:
    """Per word: the local speaker (from the exclusive turns), a confidence 0..1, an overlap flag.

    Confidence is the share of the word covered by the winner's exclusive turns, lowered near a
    change of speaker (within ``NEAR_CHANGE`` s) and in overlapped speech; with per-channel levels
    (``--channels each``), a lav/iso channel that clearly says who speaks confirms or overrides.
    """
    if diar is None or not diar.speakers:
        return [WordSpeaker(None, 0.0, False) for _ in words]
    import bisect

    excl = _intervals(diar.exclusive)
    over = _merged([(s.start, s.end) for s in diar.overlap()])
    changes = sorted(_changes(diar.exclusive))
    out = []
    for w in words:
        a, b = float(w.start), float(max(w.end, w.start + 0.02))
        dur = b - a
        cover = {lab: _covered(iv, a, b) / dur for lab, iv in excl.items()}
        label, share = max(cover.items(), key=lambda kv: kv[1]) if cover else (None, 0.0)
        if share <= 0.0:
            mid = (a + b) / 2
            dist = {lab: _distance(iv, mid) for lab, iv in excl.items()}
            near_lab, d = min(dist.items(), key=lambda kv: kv[1])
            if d <= GAP_REACH:
                label, share = near_lab, 0.5 * (1.0 - d / GAP_REACH)
            else:
                label, share = None, 0.0
        conf = share
        in_overlap = _covered(over, a, b) / dur
        overlap = in_overlap >= OVERLAP_SHARE
        if overlap:
            conf *= 0.5
        if changes:
            k = bisect.bisect_left(changes, a)
            near = [changes[j] for j in (k - 1, k, k + 1) if 0 <= j < len(changes)]
            d_change = min(0.0 if a <= c <= b else min(abs(c - a), abs(c - b)) for c in near)
            if d_change < NEAR_CHANGE:
                conf *= 0.5 + 0.5 * d_change / NEAR_CHANGE
        if diar.channel_owner and diar.channel_levels is not None:
            label, conf = _channel_vote(diar, a, b, label, conf)
        out.append(WordSpeaker(label, round(float(min(1.0, max(0.0, conf))), 3), bool(overlap)))
    return out


def _changes(ann: "Annotation") -> list[float]:
    """Times where the exclusive speaker changes (the boundary between two different speakers'
    turns, taken at the middle of any gap shorter than 1 s)."""
    segs = sorted((seg.start, seg.end, str(lab)) for seg, _, lab in ann.itertracks(yield_label=True))
    out = []
    for (s1, e1, l1), (s2, e2, l2) in zip(segs, segs[1:]):
        if l1 != l2 and s2 - e1 < 1.0:
            out.append((e1 + s2) / 2 if s2 > e1 else s2)
    return out


def _channel_vote(diar: Diarization, a: float, b: float, label: str | None, conf: float) -> tuple[str | None, float]:
    """Let an owned channel (a lav) confirm or correct a word's speaker. The channel's level relative
    to the other channels is read only where there is sound (a word's times may reach into a pause,
    where a cold lav proves nothing)."""
    levels = diar.channel_levels
    fa, fb = int(a / FRAME), max(int(a / FRAME) + 1, int(math.ceil(b / FRAME)))
    for row, owner in diar.channel_owner.items():
        ref = _owner_reference(diar, row, owner)
        if ref is None or fa >= levels.shape[1]:
            continue
        rel, active, on, off = ref
        sel = rel[fa:fb][active[fa:fb]]
        if sel.size < 3:
            continue
        lv = float(np.median(sel))
        margin = (on - off) / 3
        if lv >= on - margin:              # the owner's channel is hot: the owner speaks
            if label == owner:
                conf = min(1.0, conf + 0.3)
            else:
                label, conf = owner, 0.6
        elif lv <= off + margin and label == owner:   # someone speaks, not into the owner's lav
            others = [s.label for s in diar.speakers if s.label != owner]
            if len(others) == 1:
                label, conf = others[0], 0.6
            else:
                conf *= 0.5
    return label, conf


def _owner_reference(diar: Diarization, row: int, owner: str):
    """For an owned channel: (its level relative to the other channels per frame, frames with sound,
    median relative level while the owner speaks, median while the others speak)."""
    cache = getattr(diar, "_owner_ref", None)
    if cache is None:
        cache = {}
        object.__setattr__(diar, "_owner_ref", cache)
    if row in cache:
        return cache[row]
    levels = diar.channel_levels
    if levels is None or levels.shape[0] < 2 or row >= levels.shape[0]:
        cache[row] = None
        return None
    others = [r for r in range(levels.shape[0]) if r != row]
    rel = levels[row] - levels[others].mean(axis=0)
    loudest = levels.max(axis=0)
    active = loudest > float(np.percentile(loudest, 10)) + 15.0
    nfr = levels.shape[1]
    on = np.zeros(nfr, dtype=bool)
    off = np.zeros(nfr, dtype=bool)
    for seg, _, lab in diar.exclusive.itertracks(yield_label=True):
        sl = slice(int(seg.start / FRAME), min(nfr, int(math.ceil(seg.end / FRAME))))
        (on if lab == owner else off)[sl] = True
    on &= active
    off &= active
    if on.sum() < 20 or off.sum() < 20:
        cache[row] = None
    else:
        cache[row] = (rel, active, float(np.median(rel[on])), float(np.median(rel[off])))
    return cache[row]


# ------------------------------------------------------------------------------------------------
# lines
# ------------------------------------------------------------------------------------------------

def smooth(attrib: list[WordSpeaker], words: list[Word], *, max_flip_words: int = 1,
           max_flip_seconds: float = 0.5, weak: float = 0.6) -> list[WordSpeaker]:
    """Give a short, weakly attributed run of words to the speaker around it: between two runs of
    the same speaker, or at the start or end of a line next to a longer run (diarization edges are
    less precise than word times, and a line rarely changes speaker without a pause)."""
    out = list(attrib)
    runs = _runs([x.speaker for x in out])
    if len(runs) < 2:
        return out

    def short_and_weak(s1: int, e1: int) -> bool:
        return (e1 - s1 <= max_flip_words and words[e1 - 1].end - words[s1].start <= max_flip_seconds
                and max(x.confidence for x in out[s1:e1]) < weak)

    def give(s1: int, e1: int, speaker: str) -> None:
        for i in range(s1, e1):
            out[i] = WordSpeaker(speaker, round(min(out[i].confidence, 0.3), 3), out[i].overlap)

    for k, (s1, e1, sp1) in enumerate(runs):
        before = runs[k - 1] if k > 0 else None
        after = runs[k + 1] if k + 1 < len(runs) else None
        if sp1 is None or not short_and_weak(s1, e1):
            continue
        if before and after and before[2] == after[2] and before[2] not in (None, sp1):
            give(s1, e1, before[2])
        elif before is None and after and after[2] is not None and after[1] - after[0] > e1 - s1:
            give(s1, e1, after[2])
        elif after is None and before and before[2] is not None and before[1] - before[0] > e1 - s1:
            give(s1, e1, before[2])
    return out


def _runs(values: list) -> list[tuple[int, int, Any]]:
    runs = []
    start = 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[start]:
            runs.append((start, i, values[start]))
            start = i
    return runs


def assign_lines(lines: list[Line], diar: Diarization | None, *, shots: list[Shot] | None = None,
                 rate: Fraction | None = None) -> tuple[list[Line], list[LineSpeaker]]:
    """Attribute every word, split lines where the speaker changes, and give each line its speaker.

    Returns the new lines (re-numbered; ``Line.speaker`` is the local label) and, in the same order,
    a :class:`LineSpeaker` with the line's confidence (the words' mean), its overlap flag (any word
    in overlapped speech) and the per-word attribution. Without a diarization, lines are returned as
    they are with no speaker.
    """
    new_lines: list[Line] = []
    info: list[LineSpeaker] = []
    for line in lines:
        if not line.words:
            new_lines.append(line)
            info.append(LineSpeaker(None, None, False, []))
            continue
        attrib = smooth(attribute_words(line.words, diar), line.words)
        for s, e, sp in _merge_unknown(_runs([a.speaker for a in attrib])):
            words = line.words[s:e]
            ws = attrib[s:e]
            part = replace(line, start=words[0].start if s > 0 else line.start,
                           end=words[-1].end if e < len(line.words) else line.end, words=list(words),
                           speaker=sp)
            if shots is not None and rate is not None:
                part.shots = shots_spanning(shots, part.start, part.end, rate)
            new_lines.append(part)
            weights = [max(0.02, w.end - w.start) for w in words]
            conf = float(np.average([x.confidence for x in ws], weights=weights)) if sp is not None else None
            info.append(LineSpeaker(sp, None if conf is None else round(conf, 3), any(x.overlap for x in ws), ws))
    if rate is not None:
        from ..align import frame_cut

        for a, b in zip(new_lines, new_lines[1:]):
            end, start = frame_cut(a.end, b.start, rate)
            if a.speaker != b.speaker and a.start < end and start < b.end:
                a.end, b.start = end, start
                if shots is not None:
                    a.shots = shots_spanning(shots, a.start, a.end, rate)
                    b.shots = shots_spanning(shots, b.start, b.end, rate)
    for i, ln in enumerate(new_lines):
        ln.index = i
    return new_lines, info


def _merge_unknown(runs: list[tuple[int, int, Any]]) -> list[tuple[int, int, Any]]:
    """Runs of words with no speaker join the neighbouring run (a line is never split by them)."""
    known = [r for r in runs if r[2] is not None]
    if not known:
        return [(runs[0][0], runs[-1][1], None)] if runs else []
    out: list[list] = []
    for s, e, sp in runs:
        if sp is None:
            if out:
                out[-1][1] = e
            else:
                out.append([s, e, None])
            continue
        if out and (out[-1][2] is None or out[-1][2] == sp):
            out[-1][1] = e
            out[-1][2] = sp
        else:
            out.append([s, e, sp])
    return [tuple(x) for x in out]


def shot_speech(shots: list[Shot], rate: Fraction, spans: Iterable[tuple[float, float]]) -> dict[int, float]:
    """Seconds of speech in each shot, for spans (start, end) in seconds (e.g. one speaker's words):
    ``{shot index: seconds}``, only shots with some speech. For `search shots --speaker`."""
    out: dict[int, float] = {}
    bounds = [(s.index, s.start(rate), s.end(rate)) for s in shots]
    for a, b in spans:
        for idx, s0, s1 in bounds:
            d = min(b, s1) - max(a, s0)
            if d > 0:
                out[idx] = out.get(idx, 0.0) + d
    return out


_MOVED_TO_IDENTITY = ("reread", "window_sums", "identify", "identify_all")


def __getattr__(name: str):
    """Identity across takes moved to :mod:`indexer.speakers.identity`; the old names still resolve."""
    if name in _MOVED_TO_IDENTITY:
        from . import identity

        return getattr(identity, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
