"""faster-whisper's log-Mel features of a long take, computed in blocks of frames with the same arithmetic.

faster-whisper computes the features of a whole take at once (its ``FeatureExtractor.__call__``): the windowed
frames, their FFT, a complex64 copy and the power spectrum, each as large as the take. On a 1 h take faster-whisper
then peaked at 2.96 GB (1.41 GB in blocks), which made the speech step the peak of a run (3.07 GiB RSS with every
default step, 2.18 GiB in blocks). Each frame's spectrum and Mel energies depend on that frame's samples only, and
the one whole-take quantity, the maximum used to floor the log energies, is applied after all blocks, so the
features are the same numbers (tests/test_whisper_features.py compares them exactly on real speech; a 20-min take:
identical, 1.1 s against 1.6 s). Audio shorter than two blocks (30 s windows, language detection) takes
faster-whisper's own path.
"""

from __future__ import annotations

import numpy as np

BLOCK_FRAMES = 1 << 15          # 327 s of frames per block: a few hundred MB at most, whatever the take's length


def install(model) -> None:
    """Make ``model`` (a faster-whisper ``WhisperModel``) compute long features in blocks."""
    extractor = model.feature_extractor
    if not isinstance(extractor, BlockFeatures):
        model.feature_extractor = BlockFeatures(extractor)


class BlockFeatures:
    """Wraps faster-whisper's ``FeatureExtractor``: the same call, attributes and result."""

    def __init__(self, inner):
        self.__dict__["inner"] = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __setattr__(self, name, value):
        setattr(self.inner, name, value)

    def __call__(self, waveform: np.ndarray, padding: int = 160, chunk_length=None):
        inner = self.inner
        hop = inner.hop_length
        if len(waveform) <= 2 * BLOCK_FRAMES * hop:
            return inner(waveform, padding=padding, chunk_length=chunk_length)
        if chunk_length is not None:                     # as inner.__call__ does
            inner.n_samples = chunk_length * inner.sampling_rate
            inner.nb_max_frames = inner.n_samples // hop
        n_fft = inner.n_fft
        x = np.asarray(waveform, dtype=np.float32)
        if padding:
            x = np.pad(x, (0, padding))
        window = np.hanning(n_fft + 1)[:-1].astype("float32")
        x = np.pad(x, (n_fft // 2, n_fft // 2), mode="reflect")          # stft(center=True), numpy's "reflect"
        n_frames = 1 + (len(x) - n_fft) // hop
        kept = n_frames - 1                                                # faster-whisper drops the last frame
        out = np.empty((inner.mel_filters.shape[0], kept), dtype=np.float32)
        a = 0
        while a < kept:
            # the last block is never short: numpy multiplies a one-column block through another BLAS routine
            # (gemv), whose sums may round differently
            b = kept if kept - a < BLOCK_FRAMES + BLOCK_FRAMES // 2 else a + BLOCK_FRAMES
            frames = np.lib.stride_tricks.as_strided(x[a * hop:], (b - a, n_fft), (hop * x.strides[0], x.strides[0]))
            spec = np.fft.rfft(frames * window, n=n_fft, axis=-1).astype("complex64").T
            magnitudes = np.abs(spec) ** 2
            mel = inner.mel_filters @ magnitudes
            out[:, a:b] = np.log10(np.clip(mel, a_min=1e-10, a_max=None))
            a = b
        out = np.maximum(out, out.max() - 8.0)
        return (out + 4.0) / 4.0
