"""CAM++ speaker embeddings (3D-Speaker's ``campplus_cn_en_common`` weights), written for dailies.

The network follows the CAM++ paper (H. Wang et al., "CAM++: A Fast and Efficient Network for
Speaker Verification Using Context-Aware Masking", arXiv 2303.00332): a small 2-D convolutional
front (FCM) over the 80-dim fbank, a densely connected TDNN trunk whose layers carry a
context-aware mask (a gate computed from utterance-level and 100-frame segment-level averages),
statistics pooling (mean + standard deviation) and a 192-dim embedding layer. The layer names are
those of the released ``state_dict``, which loads with ``strict=True``.

Front end: 80-dim Kaldi fbank (25 ms window, 10 ms hop, 16 kHz, no dither) with the mean over the
utterance subtracted, from ``torchaudio.compliance.kaldi.fbank``.

torch is imported inside functions (the network classes are built on first use), so importing this
module costs nothing; ``dailies --help`` never loads torch.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ModelError
from ..models.checksum import file_sha256

if TYPE_CHECKING:  # pragma: no cover
    import torch

# oneDNN (torch's CPU convolutions) caches compiled kernels per input shape, 1024 by default; speech
# segments come in many lengths, and that cache grew past 1 GB in a long take. A small cache costs no
# speed here. It only takes effect if set before torch's first convolution in the process.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16")

SAMPLE_RATE = 16000
FEAT_DIM = 80
EMBED_DIM = 192
FRAME_SHIFT = 0.010          # seconds per fbank frame
FRAME_LENGTH = 0.025
WEIGHTS_FILE = "campplus_cn_en_common.pt"
WEIGHTS_SHA256 = "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199"
NAME = "campplus-zh-en-common"

# (dense layers, kernel size, dilation) of the three CAM-dense blocks, as in the paper's CAM++ model.
BLOCKS = ((12, 3, 1), (24, 3, 2), (16, 3, 2))
GROWTH = 32          # channels each dense layer adds
BOTTLENECK = 4       # bottleneck width = BOTTLENECK * GROWTH
TRUNK_CHANNELS = 128
SEGMENT_FRAMES = 100  # segment length of the context-aware mask's segment pooling


@functools.lru_cache(maxsize=1)
def _network():
    """Build the CAM++ module classes (torch imported here, once) and return the top-level class."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    def bn_relu(channels: int) -> nn.Sequential:
        return nn.Sequential(OrderedDict(batchnorm=nn.BatchNorm1d(channels), relu=nn.ReLU()))

    class ResBlock2d(nn.Module):
        """Two 3x3 convolutions with a residual path; strides only along frequency."""

        def __init__(self, cin: int, cout: int, stride: int):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride=(stride, 1), padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            if stride != 1 or cin != cout:
                self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=(stride, 1), bias=False),
                                              nn.BatchNorm2d(cout))
            else:
                self.shortcut = nn.Sequential()

        def forward(self, x):
            y = F.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            return F.relu(y + self.shortcut(x))

    class FCM(nn.Module):
        """Front convolution module: (B, F, T) fbank -> (B, 32 * F/8, T)."""

        def __init__(self, channels: int = 32, feat_dim: int = FEAT_DIM):
            super().__init__()
            self.conv1 = nn.Conv2d(1, channels, 3, stride=1, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(channels)
            self.layer1 = nn.Sequential(ResBlock2d(channels, channels, 2), ResBlock2d(channels, channels, 1))
            self.layer2 = nn.Sequential(ResBlock2d(channels, channels, 2), ResBlock2d(channels, channels, 1))
            self.conv2 = nn.Conv2d(channels, channels, 3, stride=(2, 1), padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(channels)
            self.out_channels = channels * (feat_dim // 8)

        def forward(self, x):
            y = F.relu(self.bn1(self.conv1(x.unsqueeze(1))))
            y = self.layer2(self.layer1(y))
            y = F.relu(self.bn2(self.conv2(y)))
            b, c, f, t = y.shape
            return y.reshape(b, c * f, t)

    class TDNN(nn.Module):
        def __init__(self, cin: int, cout: int, kernel: int, stride: int):
            super().__init__()
            self.linear = nn.Conv1d(cin, cout, kernel, stride=stride, padding=(kernel - 1) // 2, bias=False)
            self.nonlinear = bn_relu(cout)

        def forward(self, x):
            return self.nonlinear(self.linear(x))

    class ContextAwareMask(nn.Module):
        """Local TDNN output gated by a mask from utterance- and segment-level context."""

        def __init__(self, cin: int, cout: int, kernel: int, dilation: int):
            super().__init__()
            self.linear_local = nn.Conv1d(cin, cout, kernel, padding=(kernel - 1) // 2 * dilation,
                                          dilation=dilation, bias=False)
            self.linear1 = nn.Conv1d(cin, cin // 2, 1)
            self.linear2 = nn.Conv1d(cin // 2, cout, 1)

        def forward(self, x):
            # The context is constant over each segment of SEGMENT_FRAMES frames, and everything between it and
            # the gate works frame by frame (1x1 convolutions, ReLU, sigmoid): the gate is computed once per
            # segment, then spread over the segment's frames. 3D-Speaker spreads the context first and runs
            # the two 1x1 convolutions on every frame; same arithmetic, a fifth of CAM++'s time more.
            frames = x.shape[-1]
            seg = F.avg_pool1d(x, SEGMENT_FRAMES, SEGMENT_FRAMES, ceil_mode=True)
            context = x.mean(-1, keepdim=True) + seg
            gate = torch.sigmoid(self.linear2(F.relu(self.linear1(context))))
            gate = torch.repeat_interleave(gate, SEGMENT_FRAMES, dim=-1)[..., :frames]
            return self.linear_local(x) * gate

    class DenseLayer(nn.Module):
        """BN-ReLU, 1x1 bottleneck, BN-ReLU, context-aware-masked TDNN producing GROWTH channels."""

        def __init__(self, cin: int, kernel: int, dilation: int):
            super().__init__()
            width = BOTTLENECK * GROWTH
            self.nonlinear1 = bn_relu(cin)
            self.linear1 = nn.Conv1d(cin, width, 1, bias=False)
            self.nonlinear2 = bn_relu(width)
            self.cam_layer = ContextAwareMask(width, GROWTH, kernel, dilation)

        def forward(self, x):
            return self.cam_layer(self.nonlinear2(self.linear1(self.nonlinear1(x))))

    class DenseBlock(nn.Module):
        def __init__(self, layers: int, cin: int, kernel: int, dilation: int):
            super().__init__()
            for i in range(layers):
                self.add_module(f"tdnnd{i + 1}", DenseLayer(cin + i * GROWTH, kernel, dilation))

        def forward(self, x):
            for layer in self.children():
                x = torch.cat([x, layer(x)], dim=1)
            return x

    class Transit(nn.Module):
        def __init__(self, cin: int, cout: int):
            super().__init__()
            self.nonlinear = bn_relu(cin)
            self.linear = nn.Conv1d(cin, cout, 1, bias=False)

        def forward(self, x):
            return self.linear(self.nonlinear(x))

    class StatsPool(nn.Module):
        def forward(self, x):
            mean = x.mean(dim=-1)
            std = x.std(dim=-1, unbiased=True) if x.shape[-1] > 1 else torch.full_like(mean, 1e-2)
            return torch.cat([mean, std], dim=-1)

    class Embedding(nn.Module):
        def __init__(self, cin: int, cout: int):
            super().__init__()
            self.linear = nn.Conv1d(cin, cout, 1, bias=False)
            self.nonlinear = nn.Sequential(OrderedDict(batchnorm=nn.BatchNorm1d(cout, affine=False)))

        def forward(self, x):  # x: (B, C) pooled statistics
            return self.nonlinear(self.linear(x.unsqueeze(-1)).squeeze(-1))

    class CAMPPlus(nn.Module):
        """fbank (B, T, 80) -> embedding (B, 192)."""

        def __init__(self, feat_dim: int = FEAT_DIM, embed_dim: int = EMBED_DIM):
            super().__init__()
            self.head = FCM(feat_dim=feat_dim)
            trunk = nn.Sequential()
            trunk.add_module("tdnn", TDNN(self.head.out_channels, TRUNK_CHANNELS, 5, stride=2))
            channels = TRUNK_CHANNELS
            for i, (layers, kernel, dilation) in enumerate(BLOCKS, 1):
                trunk.add_module(f"block{i}", DenseBlock(layers, channels, kernel, dilation))
                channels += layers * GROWTH
                trunk.add_module(f"transit{i}", Transit(channels, channels // 2))
                channels //= 2
            trunk.add_module("out_nonlinear", bn_relu(channels))
            trunk.add_module("stats", StatsPool())
            trunk.add_module("dense", Embedding(channels * 2, embed_dim))
            self.xvector = trunk

        def forward(self, feats):
            return self.xvector(self.head(feats.transpose(1, 2)))

    return CAMPPlus


# ------------------------------------------------------------------------------------------------
# front end
# ------------------------------------------------------------------------------------------------

def fbank(waveform: "np.ndarray | torch.Tensor", *, normalize: bool = True) -> "torch.Tensor":
    """80-dim Kaldi fbank of a 16 kHz mono waveform (float, -1..1): (frames, 80) float32.

    With ``normalize`` the mean over all frames is subtracted (per-utterance mean normalisation).
    """
    import torch
    from torchaudio.compliance import kaldi

    wav = torch.as_tensor(np.asarray(waveform, dtype=np.float32) if not isinstance(waveform, torch.Tensor)
                          else waveform, dtype=torch.float32).reshape(1, -1)
    min_samples = int(SAMPLE_RATE * FRAME_LENGTH)
    if wav.shape[1] < min_samples:
        wav = torch.nn.functional.pad(wav, (0, min_samples - wav.shape[1]))
    feats = kaldi.fbank(wav, num_mel_bins=FEAT_DIM, frame_length=FRAME_LENGTH * 1000,
                        frame_shift=FRAME_SHIFT * 1000, dither=0.0, sample_frequency=SAMPLE_RATE)
    if normalize:
        feats = feats - feats.mean(dim=0, keepdim=True)
    return feats


# ------------------------------------------------------------------------------------------------
# loading and embedding
# ------------------------------------------------------------------------------------------------

class CamppEmbedder:
    """The CAM++ network with its weights loaded, on CPU (or ``device``), in eval mode.

    ``embed(waveform)`` embeds a whole 16 kHz waveform; ``embed_features(list of fbank)`` embeds
    already computed (normalised) feature matrices, batching those of similar length.
    """

    def __init__(self, weights: str | os.PathLike, *, device: str = "cpu", threads: int | None = None,
                 verify: bool = True):
        import torch

        path = Path(weights)
        if path.is_dir():
            path = path / WEIGHTS_FILE
        if not path.is_file():
            raise ModelError(f"{path}: CAM++ weights not found; run `dailies models fetch` to get them.")
        self.path = str(path)
        self.sha256 = file_sha256(path) if verify else None
        if verify and self.sha256 != WEIGHTS_SHA256:
            raise ModelError(f"{path}: the CAM++ weights are corrupt (sha256 {self.sha256[:12]}… is not the "
                             f"expected {WEIGHTS_SHA256[:12]}…); delete the file and run `dailies models fetch`.")
        if threads:
            torch.set_num_threads(threads)
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ModelError(f"{path}: cannot load the CAM++ weights ({type(exc).__name__}: {exc}).") from None
        self.model = load_state(state)
        self.device = torch.device(device)
        self.model.to(self.device)

    def describe(self) -> dict[str, Any]:
        return {"name": NAME, "dim": EMBED_DIM, "path": self.path, "sha256": self.sha256,
                "features": "kaldi-fbank-80 cmn"}

    @staticmethod
    def fbank(waveform, *, normalize: bool = True):
        """The network's front end (:func:`fbank`): what :meth:`embed_features` takes."""
        return fbank(waveform, normalize=normalize)

    def embed(self, waveform: np.ndarray) -> np.ndarray:
        """One embedding (192,) float32 of a whole 16 kHz mono waveform."""
        return self.embed_features([fbank(waveform)])[0]

    def embed_features(self, feats: list, *, bucket: int = 0, max_batch_frames: int = 6000) -> np.ndarray:
        """Embeddings (N, 192) of normalised fbank matrices (T_i, 80); empty matrices give NaN rows,
        batched by :func:`equal_length_batches`."""
        import torch

        out = np.full((len(feats), EMBED_DIM), np.nan, dtype=np.float32)
        with torch.inference_mode():
            for part, mats in equal_length_batches(feats, bucket=bucket, max_batch_frames=max_batch_frames):
                batch = torch.stack([torch.as_tensor(m, dtype=torch.float32) for m in mats])
                out[part] = self.model(batch.to(self.device)).float().cpu().numpy()
        return out


def equal_length_batches(feats: list, *, bucket: int = 0, max_batch_frames: int = 6000):
    """How CAM++ (torch or ONNX) batches fbank matrices: yields (row indices, matrices) of one length
    each, at most ``max_batch_frames`` frames a batch; empty matrices are left out (their rows stay NaN).

    Padding would change the statistics pooling, so only matrices of one length share a batch.
    ``bucket`` > 0 crops each matrix to a multiple of that many frames (dropping < bucket frames
    from its end) so that many share a length and run as one batch (much faster on CPU).
    """
    if bucket > 0:
        feats = [f[: (f.shape[0] // bucket) * bucket] if f.shape[0] >= bucket else f for f in feats]
    by_length: dict[int, list[int]] = {}
    for i, f in enumerate(feats):
        if f.shape[0] > 0:
            by_length.setdefault(int(f.shape[0]), []).append(i)
    for length, items in sorted(by_length.items()):
        step = max(1, max_batch_frames // length)
        for k in range(0, len(items), step):
            part = items[k:k + step]
            yield part, [feats[i] for i in part]


def load_state(state: dict) -> "torch.nn.Module":
    """A CAM++ module in eval mode with ``state`` loaded strictly."""
    model = _network()()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ModelError(f"the CAM++ weights do not fit the network ({first}).") from None
    model.eval()
    return model
