"""Loading the diarization models: pyannote's ``SpeakerDiarization`` pipeline with segmentation-3.0 and
our CAM++ (:mod:`indexer.speakers.campplus`) as its speaker-embedding model, or a pyannote pipeline
(hub id or folder), on the device chosen for it.

torch and pyannote are imported inside functions only.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..models.diarization import DiarizationModels
from .records import SAMPLE_RATE

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


def load(models: DiarizationModels, *, device: str | None = "cpu", params: dict | None = None,
         threads: int | None = None, segmentation_step: float = SEGMENTATION_STEP):
    """The pipeline on the device chosen for it (``cpu``, ``cuda`` or ``auto``, resolved here):
    (the pipeline, the device it runs on)."""
    from ..config import torch_device

    device = torch_device(device, "speaker diarization")
    return build_pipeline(models, params=params, threads=threads, segmentation_step=segmentation_step,
                          device=device), device
