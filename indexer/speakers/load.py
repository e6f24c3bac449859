"""Loading the diarization models: segmentation-3.0 and our CAM++ (:mod:`indexer.speakers.campplus`) in
:class:`indexer.speakers.engine.Engine` (:func:`load_engine`: ONNX Runtime on the CPU, torch on a GPU), or
a pyannote pipeline (hub id or folder, :func:`load`), on the device chosen for it. :func:`build_pipeline`
also builds pyannote.audio's own ``SpeakerDiarization`` with our CAM++, which the evaluation and the
engine's equality test run beside the engine.

torch and pyannote are imported inside functions only.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..models.diarization import DiarizationModels
from .records import SAMPLE_RATE

EMBED_DIM = 192

# Hyper-parameters of the default pipeline: pyannote 3.1's published values, with the clustering
# threshold (cosine distance between CAM++ centroids) checked on the AMI debug *train* files only
# (scripts/eval_diarization.py --tune): train DER is flat (25.6-26.4 %) from 0.55 to 0.90, so the
# published 0.70 stays; below 0.55 windows of one speaker split apart (38 % at 0.50).
DEFAULT_PARAMS: dict[str, Any] = {
    "segmentation": {"min_duration_off": 0.0},
    "clustering": {"method": "centroid", "min_cluster_size": 12, "threshold": 0.70},
}
SEGMENTATION_STEP = 0.1          # of the 10 s window: a new window every second (pyannote's default)
# A coarser step with CAM++ per chunk (fewer chunks, so fewer CAM++ passes) was tried on the tuning data only
# (scripts/eval_diarization.py --tuning-only --segmentation-step S; AMI train and the fixture shoot, no held-out
# file looked at): step 0.1 / 0.2 / 0.3 gave train DER 26.4 / 29.3 / 26.9 %, fixture DER 9.9 / 13.1 / 12.3 %
# (a third voice on 12A_T1), train identity 95.8 / 95.0 / 96.0 %; min_cluster_size scaled with the step
# (6 at 0.2, 4 at 0.3) changed nothing. The fixture figure gets worse, so the step stays 0.1.
# CAM++ on every n-th chunk only, at the 0.1 step (each other chunk's local speakers borrowing the embedding of the
# local speaker of the nearest embedded chunk active on the most of the same frames; tried 2026-12-04, not kept):
# tuning data first (--tuning-only), n = 2 / 3 / 5: train DER 28.2 / 26.5 / 25.9 %, fixture 11.8 / 9.9 / 13.7 % (a
# third voice on 12A_T1 at 2 and 5), train identity 95.7 % at each; embeddings 3x fewer at n = 3. Scored once on the
# held-out files at n = 3: sample.wav 5.21 % (same), AMI dev+test 52.2 % against 47.5 %, identity on the 13 AMI
# files 94.0 % against 94.8 %. It loses the held-out figures, like the pooled modes below.
# With pooled embeddings, a new window every 2.5 s. Chosen on the AMI debug *train* files and the fixture
# shoot only (1 thread): pooled everywhere ("pooled-all"), step 0.1 / 0.25 / 0.5 gave train DER 26.1 /
# 25.2 / 26.3 %, train identity (train files alone) 95.9 / 96.3 / 96.4 %, fixture DER 6.7 / 6.4 / 6.0 %;
# pooled chunk embeddings only ("pooled"), 0.1 / 0.25: train DER 26.3 / 25.6 %, fixture 9.9 / 9.6 %
# (pyannote's CAM++-per-chunk embeddings at 0.1: train 26.0-26.4 %, fixture 9.9 %, identity 95.8 %).
# 0.25 has the best train DER; segmentation costs 2.5x less than at 0.1.
POOLED_SEGMENTATION_STEP = 0.25


def segmentation_step_for(embeddings: str) -> float:
    """The segmentation step that goes with an embedding mode (see ``EMBEDDINGS``)."""
    return SEGMENTATION_STEP if embeddings == "chunks" else POOLED_SEGMENTATION_STEP
# pyannote's (chunk, local speaker) embeddings: "chunks" (CAM++ run on every chunk's masked speech, pyannote's
# way; the default), "pooled" (CAM++'s trunk once per file, its statistics pooled per mask:
# pooled_embeddings) or "pooled-all" (the refinement's segments and windows pooled from the same frames
# too: PooledSpans; the fastest). Chosen by DAILIES_SPEAKER_EMBEDDINGS. The pooled modes are not the
# default: on the held-out files (scripts/eval_diarization.py) they lose accuracy; sample.wav DER 5.21 ->
# 5.53 %, AMI dev+test 47.5 -> 52.1 % ("pooled") and 49.8 % ("pooled-all"); cross-take identity on the
# 13 AMI files 94.8 -> 92.3 % and 91.8 %; the fixture shoot 9.9 -> 9.6 % and its identity 99.7 -> 100 %.
# The speaker step ran some 2x ("pooled") and 6x ("pooled-all") faster in the same evaluation.
# "pooled" at pyannote's 1 s step (chosen after seeing those held-out figures): sample 5.21 %, AMI
# dev+test 46.4 %, fixture 9.9 %, but identity on the 13 AMI files 94.1 % (>= 3 s: 95.6 against 96.3 %).
EMBEDDING_MODES = ("chunks", "pooled", "pooled-all")
EMBEDDINGS = os.environ.get("DAILIES_SPEAKER_EMBEDDINGS") or "chunks"
# On the CPU the engine's (chunk, local speaker) embeddings, which only clustering reads, run the int8 CAM++
# (nets.quantize_campp); the refinement's segments and windows, which the voice registry reads, stay float. Set
# DAILIES_CAMPP_INT8=0 for float everywhere. Chosen on the tuning data (scripts/eval_diarization.py --tuning-only:
# AMI train DER 26.39 -> 26.08 %, fixture 9.88 % both, train identity 95.8 % both), then scored once on the held-out
# files: sample.wav 5.21 % both, AMI dev+test 47.47 -> 43.29 %, identity on the 13 AMI files 94.8 % both (>= 3 s
# of speech: 96.3 -> 96.6 %). int8 in the refinement too had been scored first: identity 94.3 %, so not kept. The
# speaker step runs 1.35x faster.
CAMPP_INT8 = os.environ.get("DAILIES_CAMPP_INT8", "1").strip().lower() not in ("0", "false", "no", "off")
# Only the middle N s of each (chunk, local speaker) stretch embedded (tried 2026-12-05, not kept; the chunk embeddings
# cost 45 % less at N = 3): tuning data first (--tuning-only), N = 3 / 4 / 5: AMI train DER 26.55 / 26.08 / 26.08 %
# (26.08 % uncut), fixture 9.88 % at each, train identity unchanged at 4 and 5. Scored once on the held-out files at
# N = 5: sample.wav 5.21 % (same), AMI dev+test 52.60 % against 43.29 % (a dev file split into 4 voices), identity on the
# 13 AMI files 94.2 % against 94.8 %. Not kept.
# int8 segmentation (tried 2026-12-05, not kept; no held-out file scored): ONNX Runtime's dynamic quantisation of the
# four LSTMs only (quantising its linear layers too agrees with float on 85 % of frames, and gains nothing) made a
# window 1.44x faster (33.2 -> 23.0 ms, 1 thread) and agreed with float on 99.5 % of frames (99.7 % per channel;
# measured on sample.wav and three AMI files, against float, not against any reference). Tuning data
# (--tuning-only), per tensor / per channel: AMI train DER 26.49 / 26.23 % against 26.08 %, fixture 9.93 / 9.72 %
# against 9.88 %, train identity 95.4 / 95.3 % against 95.8 %. Worse on the tuning data, so not scored on the
# held-out files. It would have saved about 2.5 s of the bench's 30 s speaker step.
EMBED_MIN_SECONDS = 0.25         # shorter masked speech gives no embedding (NaN, ignored by clustering)
EMBED_BUCKET = 50                # fbank frames: speech is cropped to a multiple (<= 0.49 s lost), so
                                 # that lengths repeat: batches form and fewer kernel shapes are built

GPU_BATCH = 32                   # segmentation and embedding batches on a GPU


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


# ------------------------------------------------------------------------------------------------
# CAM++ once per file, pooled per (chunk, local speaker): the fast embeddings
# ------------------------------------------------------------------------------------------------

POOLED_BLOCK = 3000              # fbank frames (30 s) per pass of the CAM++ trunk: memory stays bounded
POOLED_MARGIN = 100              # fbank frames of context on each side of a block, dropped afterwards


def frame_features(embedder, audio) -> "Any":
    """CAM++ frame features of a whole 16 kHz waveform: the trunk's output before statistics pooling,
    (channels, frames) at 20 ms per frame (the trunk's first layer has stride 2), computed once per
    file in blocks of ``POOLED_BLOCK`` fbank frames with ``POOLED_MARGIN`` frames of context each side.
    fbank is mean-normalised over the whole file."""
    import torch

    from .campplus import fbank

    feats = fbank(audio)                                   # (T, 80), file-level mean normalisation
    model = embedder.model
    trunk = model.xvector[:-2]                             # up to out_nonlinear (no stats, no dense)
    total = feats.shape[0]
    parts = []
    with torch.inference_mode():
        for a in range(0, total, POOLED_BLOCK):
            b = min(total, a + POOLED_BLOCK)
            lo, hi = max(0, a - POOLED_MARGIN), min(total, b + POOLED_MARGIN)
            lo -= lo % 2                                   # keep the stride-2 grid aligned with the file's
            x = feats[lo:hi][None].to(embedder.device)
            y = trunk(model.head(x.transpose(1, 2)))[0]    # (C, ceil((hi - lo) / 2))
            first = (a - lo + 1) // 2
            parts.append(y[:, first: first + (b - a + 1) // 2].float().cpu())
    return torch.cat(parts, dim=1)


class PooledSpans:
    """CAM++ embeddings of stretches of one file pooled from its frame features (:func:`frame_features`,
    computed once): what the refinement (:mod:`indexer.speakers.refine`) embeds its segments and
    windows with when the diarizer's embeddings are ``pooled-all``, instead of running CAM++ on each."""

    def __init__(self, embedder, frames):
        self.embedder = embedder
        self.frames = frames                               # (C, F) torch tensor, 20 ms per frame

    def embed_spans(self, spans) -> "Any":
        """Embeddings (N, 192) of ``spans`` ((start, end) in seconds); NaN rows for stretches under
        two frames."""
        import numpy as np
        import torch

        y = self.frames
        n_frames = y.shape[1]
        out = np.full((len(spans), EMBED_DIM), np.nan, dtype=np.float32)
        stats, rows = [], []
        for i, (a, b) in enumerate(spans):
            lo = min(n_frames, max(0, int(round(a / 0.02))))
            hi = min(n_frames, max(lo, int(round(b / 0.02))))
            if hi - lo < 2:
                continue
            part = y[:, lo:hi]
            mean, var = part.mean(1), part.var(1)       # unbiased, as CAM++'s statistics pooling
            stats.append(torch.cat([mean, var.clamp_min(1e-10).sqrt()]))
            rows.append(i)
        if stats:
            with torch.inference_mode():
                out[rows] = self.embedder.model.xvector.dense(torch.stack(stats).to(self.embedder.device)).float().cpu().numpy()
        return out


def pooled_embeddings(pipe, embedder, file, binary_segmentations, exclude_overlap: bool = False, hook=None):
    """pyannote's ``get_embeddings`` (one embedding per chunk and local speaker), with CAM++'s trunk run
    once over the file (:func:`frame_features`) and its statistics pooling (mean, standard deviation)
    done per (chunk, local speaker) over the frames of the speaker's mask, then CAM++'s embedding
    layer. pyannote's own way re-runs the whole network on every chunk's masked speech: with its 1 s
    step, some ten passes over every second of speech. Overlapped frames are left out as pyannote
    does (unless that leaves too little); too little speech gives a NaN row, which clustering skips."""
    import numpy as np
    import torch

    if hook is not None:
        hook("embeddings", None, total=1, completed=0)
    wav = file["waveform"][0].numpy() if hasattr(file["waveform"], "numpy") else np.asarray(file["waveform"])[0]
    y = frame_features(embedder, wav)                      # (C, F)
    pipe.last_frames = y                                   # the refinement pools its segments from them too
    chans, nframes = y.shape
    data = np.nan_to_num(binary_segmentations.data, nan=0.0).astype(np.float32)   # (chunks, frames, speakers)
    chunks, seg_frames, speakers = data.shape
    window = binary_segmentations.sliding_window
    per_chunk = int(round(window.duration / 0.02))         # trunk frames per chunk
    min_frames = max(2, int(EMBED_MIN_SECONDS / 0.02))
    if exclude_overlap:
        clean = data * (data.sum(axis=2, keepdims=True) < 2)
    else:
        clean = data
    # nearest-frame map from a chunk's trunk frames to its segmentation frames
    pick = np.minimum(seg_frames - 1, (np.arange(per_chunk) * seg_frames / per_chunk + 0.5 * seg_frames / per_chunk).astype(int))
    padded = torch.zeros(chans, nframes + per_chunk + 1)
    padded[:, :nframes] = y
    sq = padded * padded
    out = np.full((chunks, speakers, EMBED_DIM), np.nan, dtype=np.float32)
    dense = embedder.model.xvector.dense
    stats, keep = [], []
    for c in range(chunks):
        start = int(round(window[c].start / 0.02))
        lo = max(0, start)
        cols = slice(lo, lo + per_chunk)
        valid = np.arange(lo, lo + per_chunk) < nframes
        for k in range(speakers):
            m = clean[c, pick, k] > 0.5
            if (m & valid).sum() <= min_frames:
                m = data[c, pick, k] > 0.5
            m &= valid
            n = int(m.sum())
            if n < min_frames:
                continue
            w = torch.from_numpy(m.astype(np.float32))
            mean = padded[:, cols] @ w / n
            var = (sq[:, cols] @ w - n * mean * mean) / (n - 1)
            stats.append(torch.cat([mean, var.clamp_min(1e-10).sqrt()]))
            keep.append((c, k))
    if stats:
        with torch.inference_mode():
            emb = dense(torch.stack(stats).to(embedder.device)).float().cpu().numpy()
        for (c, k), e in zip(keep, emb):
            out[c, k] = e
    if hook is not None:
        hook("embeddings", None, total=1, completed=1)
    return out


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
                   segmentation_batch_size: int = 4, device: str = "cpu", embeddings: str = "chunks"):
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
    if embeddings in ("pooled", "pooled-all"):
        import functools

        pipe.get_embeddings = functools.partial(pooled_embeddings, pipe, embedder)
    if device != "cpu":
        # segmentation-3.0 on the GPU (CAM++ is there already; fbank features are made on the CPU and
        # batched onto the GPU by CamppEmbedder.embed_features), in larger batches. On an H200,
        # scripts/bench_diarization_device.py: 210 s of sound in 11.1 s against 26.0 s on 16 CPU
        # threads, with the same turns.
        pipe.segmentation_batch_size = max(segmentation_batch_size, GPU_BATCH)
        pipe.embedding_batch_size = max(embedding_batch_size, GPU_BATCH)
        pipe.to(torch.device(device))
    return pipe


class PooledChunks:
    """The engine's embedding step in the pooled modes (see ``EMBEDDINGS``): :func:`pooled_embeddings`
    over the engine's segmentation; keeps the file's CAM++ frames for the refinement (``last_frames``)."""

    def __init__(self, embedder):
        self.embedder = embedder
        self.last_frames = None

    def whole(self, audio, segmentations, hook=None):
        import numpy as np

        return pooled_embeddings(self, self.embedder, {"waveform": np.asarray(audio)[None]}, segmentations,
                                 exclude_overlap=True, hook=hook)


def _torch_segmentation(models: DiarizationModels, device: str):
    """segmentation-3.0 as a function of (B, 1, N) chunks, in torch (pyannote.audio loads it)."""
    import torch
    from pyannote.audio import Model

    try:
        model = Model.from_pretrained(models.segmentation)
    except Exception as exc:
        raise ModelError(f"{models.segmentation}: cannot load the segmentation model ({type(exc).__name__}).") from None
    model.eval()
    model.to(torch.device(device))

    def segment(chunks):
        with torch.inference_mode():
            return model(torch.from_numpy(chunks).to(model.device)).float().cpu().numpy()
    return segment


def load_engine(models: DiarizationModels, *, device: str = "cpu", params: dict | None = None,
                threads: int | None = None, segmentation_step: float = SEGMENTATION_STEP,
                embeddings: str = "chunks", int8: bool = CAMPP_INT8):
    """The default models in :class:`indexer.speakers.engine.Engine` (pyannote's pipeline without
    pyannote.audio): (engine, CAM++ embedder for the refinement). On the CPU the networks run in ONNX Runtime
    (:mod:`indexer.speakers.nets`) and torch is never imported, the engine's chunk embeddings with the int8
    CAM++ when ``int8`` (see ``CAMPP_INT8``); on a GPU, or with the pooled embeddings (which use CAM++'s
    trunk), in torch."""
    from .engine import ChunkEmbeddings, Engine

    chunk_embedder = None
    if device == "cpu" and embeddings == "chunks":
        from . import nets

        segment, embedder = nets.load_nets(models, threads=threads)
        if int8:
            chunk_embedder = nets.load_int8_campp(models, threads=threads)
    else:
        import torch

        from .campplus import CamppEmbedder

        if threads:
            torch.set_num_threads(threads)
        segment = _torch_segmentation(models, device)
        embedder = CamppEmbedder(models.embedding, verify=False, device=device)   # checksum: diarization.resolve
    batch = GPU_BATCH if device != "cpu" else 4
    if embeddings == "chunks":
        embed = ChunkEmbeddings(chunk_embedder or embedder, embedder.fbank, min_seconds=EMBED_MIN_SECONDS,
                                bucket=EMBED_BUCKET)
    else:
        embed = PooledChunks(embedder)
    engine = Engine(segment, embed, params=params or DEFAULT_PARAMS, step=segmentation_step, batch_size=batch,
                    exclude_overlap=True, min_embed_seconds=EMBED_MIN_SECONDS)
    return engine, embedder


def load(models: DiarizationModels, *, device: str | None = "cpu", params: dict | None = None,
         threads: int | None = None, segmentation_step: float = SEGMENTATION_STEP, embeddings: str = "chunks"):
    """The pipeline on the device chosen for it (``cpu``, ``cuda`` or ``auto``, resolved here):
    (the pipeline, the device it runs on)."""
    from ..config import torch_device

    device = torch_device(device, "speaker diarization")
    return build_pipeline(models, params=params, threads=threads, segmentation_step=segmentation_step,
                          device=device, embeddings=embeddings), device
