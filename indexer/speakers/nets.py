"""The default speaker networks without torch at run time: segmentation-3.0 and CAM++ run by ONNX
Runtime, the Kaldi fbank computed in numpy.

Importing torch costs some 3-4 s and pyannote.audio some 7 s more (Lightning, torchmetrics,
torchvision); a take's diarization needs neither once the two networks are ONNX files. torch and
pyannote.audio export those files once (:func:`export_segmentation`, :func:`export_campp`), from the
weights the model cache holds; `dailies models fetch` makes them, and :func:`onnx_paths` makes them
on first need otherwise. torch is imported only inside the export functions. An int8 CAM++ for the engine's
chunk embeddings is made from the float export with activation ranges shipped beside this module
(:func:`quantize_campp`, :func:`int8_campp_path`), by ONNX Runtime's quantisation tools, without audio.

The exports are cached by the sha256 of the weights they come from, in ``<model cache>/onnx/`` when
that folder may be written, else in the user's cache (``$XDG_CACHE_HOME/dailies/onnx`` or
``~/.cache/dailies/onnx``): a model folder shared read-only (``DAILIES_MODELS``) is never written.

Runs on the CPU only (ONNX Runtime's CPU provider); a GPU stays on the torch path.
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ModelError
from ..models.checksum import file_sha256
from .campplus import EMBED_DIM, FEAT_DIM, FRAME_LENGTH, FRAME_SHIFT, NAME as CAMPP_NAME, SAMPLE_RATE, WEIGHTS_FILE, \
    WEIGHTS_SHA256, equal_length_batches

if TYPE_CHECKING:  # pragma: no cover
    from ..models.diarization import DiarizationModels

# Bumped whenever an export changes (wrapper, opset, names, the graph): old files are then simply not used.
EXPORT_VERSION = 1
# CAM++ 2: the context-aware masks' gates computed once per segment (campplus.ContextAwareMask), 1.2x faster
CAMPP_EXPORT_VERSION = 2
# The int8 CAM++ (quantize_campp): bumped whenever its recipe changes. Its activation ranges belong to one float
# export (they name its tensors), so a new CAMPP_EXPORT_VERSION needs a new ranges file (scripts/make_int8_campp.py).
INT8_VERSION = 1
INT8_RANGES = Path(__file__).with_name(f"campp_int8_ranges_v{CAMPP_EXPORT_VERSION}.json")
OPSET = 17
CHUNK_SAMPLES = 160000            # segmentation-3.0's 10 s window at 16 kHz
SEG_CLASSES = 7                   # powerset classes of 3 speakers, at most 2 at once

# ------------------------------------------------------------------------------------------------
# Kaldi fbank in numpy
# ------------------------------------------------------------------------------------------------

_WINDOW = int(SAMPLE_RATE * FRAME_LENGTH)      # 400 samples
_SHIFT = int(SAMPLE_RATE * FRAME_SHIFT)        # 160 samples
_NFFT = 512                                     # next power of two (round_to_power_of_two)
_PREEMPHASIS = 0.97
_LOW_FREQ = 20.0                                # torchaudio's defaults: low_freq 20 Hz, high_freq Nyquist
_EPS = np.float32(np.finfo(np.float32).eps)
_BLOCK = 1024                                   # frames per pass: bounded memory on hour-long takes


@functools.lru_cache(maxsize=1)
def _fbank_constants() -> tuple[np.ndarray, np.ndarray]:
    """(povey window (400,), mel filter bank (257, 80)) as float32, by torchaudio's kaldi formulas."""
    n = np.arange(_WINDOW, dtype=np.float64)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / (_WINDOW - 1))       # hann_window(periodic=False)
    window = (hann ** 0.85).astype(np.float32)                     # "povey"

    def mel(f):
        return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)

    nyquist = 0.5 * SAMPLE_RATE
    mel_low, mel_high = mel(_LOW_FREQ), mel(nyquist)
    delta = (mel_high - mel_low) / (FEAT_DIM + 1)
    b = np.arange(FEAT_DIM, dtype=np.float64)[:, None]
    left, center, right = mel_low + b * delta, mel_low + (b + 1) * delta, mel_low + (b + 2) * delta
    fft_mel = mel((SAMPLE_RATE / _NFFT) * np.arange(_NFFT // 2, dtype=np.float64))[None, :]
    up = (fft_mel - left) / (center - left)
    down = (right - fft_mel) / (right - center)
    banks = np.maximum(0.0, np.minimum(up, down))                  # (80, 256)
    banks = np.pad(banks, ((0, 0), (0, 1)))                        # the Nyquist bin gets no weight
    return window, np.ascontiguousarray(banks.T.astype(np.float32))


def fbank(waveform: Any, *, normalize: bool = True) -> np.ndarray:
    """80-dim Kaldi fbank of a 16 kHz mono waveform (float, -1..1): (frames, 80) float32.

    The numpy twin of :func:`indexer.speakers.campplus.fbank` (``torchaudio.compliance.kaldi.fbank``
    with 25 ms frames every 10 ms, no dither, povey window, pre-emphasis 0.97, DC offset removed,
    512-point FFT, power spectrum, log with a float32-epsilon floor, only frames that fit whole); a
    waveform shorter than one frame is zero-padded to one. With ``normalize`` the mean over all
    frames is subtracted (per-utterance mean normalisation).
    """
    wav = np.asarray(waveform, dtype=np.float32).reshape(-1)
    if wav.shape[0] < _WINDOW:
        wav = np.pad(wav, (0, _WINDOW - wav.shape[0]))
    import scipy.fft            # pocketfft in C++, some 1.5x numpy's on these frames

    window, banks = _fbank_constants()
    count = 1 + (wav.shape[0] - _WINDOW) // _SHIFT
    strided = np.lib.stride_tricks.sliding_window_view(wav, _WINDOW)[::_SHIFT]
    out = np.empty((count, FEAT_DIM), dtype=np.float32)
    buf = np.empty((min(count, _BLOCK), _WINDOW), dtype=np.float32)
    k = np.float32(_PREEMPHASIS)
    for a in range(0, count, _BLOCK):
        x = strided[a: a + _BLOCK]
        m = x.shape[0]
        y = buf[:m]
        np.subtract(x, x.mean(axis=1, keepdims=True, dtype=np.float32), out=y)    # DC offset removed
        # pre-emphasis, the first sample its own predecessor (Kaldi's "replicate"); numpy reads the
        # overlapping right-hand side before writing
        y[:, 1:] -= k * y[:, :-1]
        y[:, 0] *= 1 - k
        y *= window
        spec = scipy.fft.rfft(y, n=_NFFT, axis=1)                   # (m, 257) complex64, zero-padded
        ri = spec.view(np.float32)
        np.square(ri, out=ri)
        mel = (ri[:, 0::2] + ri[:, 1::2]) @ banks                   # power spectrum, filter bank
        np.maximum(mel, _EPS, out=mel)
        np.log(mel, out=out[a: a + m])
    if normalize:
        out -= out.mean(axis=0, keepdims=True)
    return out


# ------------------------------------------------------------------------------------------------
# exporting (torch and pyannote.audio imported here only)
# ------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _exporter_without_onnx_package():
    """torch's TorchScript exporter builds the ONNX file itself but then, to insert onnxscript custom
    functions, loads it with the ``onnx`` package, which dailies does not depend on. The models
    exported here use no custom operators (``custom_opsets`` is empty), so that step would change
    nothing: when ``onnx`` is absent it is skipped."""
    try:
        import onnx  # noqa: F401
        yield
        return
    except ImportError:
        pass
    from torch.onnx._internal.torchscript_exporter import onnx_proto_utils as utils

    saved = utils._add_onnxscript_fn

    def passthrough(model_bytes, custom_opsets):
        if custom_opsets:
            raise ModelError("exporting custom ONNX operators needs the onnx package.")
        return model_bytes

    utils._add_onnxscript_fn = passthrough
    try:
        yield
    finally:
        utils._add_onnxscript_fn = saved


def _torch_export(module, args: tuple, out_path: str | os.PathLike, input_names: list[str],
                  output_names: list[str], dynamic_axes: dict) -> None:
    import torch

    with _exporter_without_onnx_package(), torch.no_grad():
        torch.onnx.export(module, args, str(out_path), dynamo=False, opset_version=OPSET,
                          input_names=input_names, output_names=output_names, dynamic_axes=dynamic_axes,
                          do_constant_folding=True)


def _segmentation_file(model_dir_or_bin: str | os.PathLike) -> Path:
    path = Path(model_dir_or_bin)
    return path / "pytorch_model.bin" if path.is_dir() else path


def load_segmentation_torch(model_dir_or_bin: str | os.PathLike):
    """segmentation-3.0 as pyannote.audio loads it (as :mod:`indexer.speakers.load` does), in eval mode."""
    from pyannote.audio import Model

    path = _segmentation_file(model_dir_or_bin)
    try:
        model = Model.from_pretrained(str(path))
    except Exception as exc:
        raise ModelError(f"{path}: cannot load the segmentation model ({type(exc).__name__}).") from None
    if model is None:
        raise ModelError(f"{path}: cannot load the segmentation model.")
    model.eval()
    return model


def export_segmentation(model_dir_or_bin: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """Write segmentation-3.0's forward as ONNX: ``waveforms`` (batch, 1, 160000) float32 ->
    ``logprobs`` (batch, frames, 7) powerset log-probabilities; the batch axis is dynamic."""
    import torch

    model = load_segmentation_torch(model_dir_or_bin)
    dummy = torch.zeros(2, 1, CHUNK_SAMPLES)
    dummy[:, 0] = 0.1 * torch.sin(torch.arange(CHUNK_SAMPLES) * 0.05)
    _torch_export(model, (dummy,), out_path, ["waveforms"], ["logprobs"],
                  {"waveforms": {0: "batch"}, "logprobs": {0: "batch"}})
    return Path(out_path)


def _campp_for_export(weights: str | os.PathLike):
    """CAM++ (``campplus.load_state``) with its statistics pooling written so that the traced graph
    keeps its one-frame case (standard deviation 0.01, as the torch module's Python branch does)."""
    import torch
    from torch import nn

    from .campplus import load_state

    path = Path(weights)
    if path.is_dir():
        path = path / WEIGHTS_FILE
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"{path}: cannot load the CAM++ weights ({type(exc).__name__}: {exc}).") from None
    model = load_state(state)

    class StatsPool(nn.Module):
        def forward(self, x):
            # (B, C, T); dims counted from the left: the exporter misplaced cat(dim=-1) here
            n = torch.ones_like(x[:1, :1, :]).sum(dim=2)           # (1, 1): the frame count, traced
            mean = x.mean(dim=2)
            var = ((x - mean.unsqueeze(2)) ** 2).sum(dim=2) / torch.clamp(n - 1, min=1.0)
            std = torch.where(n > 1, var.sqrt(), torch.full_like(mean, 1e-2))
            return torch.cat([mean, std], dim=1)

    model.xvector.stats = StatsPool()
    model.eval()
    return model


def export_campp(weights: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """Write CAM++ as ONNX: ``feats`` (batch, T, 80) normalised fbank -> ``embeddings`` (batch, 192);
    batch and T are dynamic."""
    import torch

    model = _campp_for_export(weights)
    dummy = torch.randn(2, 237, FEAT_DIM, generator=torch.Generator().manual_seed(0))
    _torch_export(model, (dummy,), out_path, ["feats"], ["embeddings"],
                  {"feats": {0: "batch", 1: "frames"}, "embeddings": {0: "batch"}})
    return Path(out_path)


# ------------------------------------------------------------------------------------------------
# the cache of exports
# ------------------------------------------------------------------------------------------------

def _user_cache() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "dailies"


def _may_write(folder: Path) -> bool:
    """Whether ``folder`` (or, when absent, its nearest existing parent) is meant to be written: the
    user may write it and its mode grants some write permission (root may write anywhere, but a
    folder made read-only, like a shared model folder, is left alone)."""
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            return False
        probe = probe.parent
    try:
        mode = probe.stat().st_mode
    except OSError:
        return False
    return (probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)
            and bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)))


def cache_dirs() -> list[Path]:
    """Where exports are looked for, in order: the model cache's ``onnx/``, then the user's cache."""
    from ..config import models_dir

    out = []
    for d in (models_dir() / "onnx", _user_cache() / "onnx"):
        if d not in out:
            out.append(d)
    return out


def _names(models: "DiarizationModels") -> tuple[str, str, str]:
    """(segmentation, CAM++, int8 CAM++) file names: the weights' sha256 and the export's version."""
    if models.kind != "default" or not models.segmentation or not models.embedding:
        raise ModelError("ONNX exports are made for the default speaker models (segmentation-3.0 and CAM++) only.")
    seg_sha = file_sha256(models.segmentation)[:12]
    campp_sha = file_sha256(models.embedding)[:12]
    ranges_sha = file_sha256(INT8_RANGES)[:8] if INT8_RANGES.is_file() else "none"
    return (f"segmentation-3.0-{seg_sha}-v{EXPORT_VERSION}.onnx", f"campplus-{campp_sha}-v{CAMPP_EXPORT_VERSION}.onnx",
            f"campplus-{campp_sha}-v{CAMPP_EXPORT_VERSION}-int8v{INT8_VERSION}-{ranges_sha}.onnx")


def _writable_dir(cache_dir: Path | None) -> Path:
    candidates = [Path(cache_dir)] if cache_dir is not None else cache_dirs()
    for d in candidates:
        if _may_write(d):
            try:
                d.mkdir(parents=True, exist_ok=True)
                return d
            except OSError:
                continue
    raise ModelError(f"No folder to keep the ONNX speaker models in ({', '.join(map(str, candidates))} cannot be "
                     "written); set DAILIES_MODELS or XDG_CACHE_HOME to a writable folder.")


def _export_to(folder: Path, name: str, export, source: str, doing: str = "exporting it to ONNX") -> Path:
    """Export into a temporary file of ``folder`` and rename it into place (two processes exporting at
    once each write their own file; the last rename wins, both files being whole)."""
    dst = folder / name
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        export(source, tmp)
        os.chmod(tmp, 0o644)                    # mkstemp's file is private; the cache is not
        os.replace(tmp, dst)
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"{source}: {doing} failed ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}).") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return dst


def _find_or_make(name: str, cache_dir: str | os.PathLike | None, force: bool, make, source,
                  doing: str = "exporting it to ONNX") -> Path:
    """The cached file ``name`` from the usual places (or ``cache_dir``), else made by ``make(source, path)`` into
    the first writable one (``source``: a path, or a callable giving it, asked only then)."""
    where = [Path(cache_dir)] if cache_dir is not None else cache_dirs()
    found = None if force else next((d / name for d in where if (d / name).is_file()), None)
    if found is None:
        found = _export_to(_writable_dir(Path(cache_dir) if cache_dir is not None else None), name, make,
                           str(source() if callable(source) else source), doing)
    return found


def onnx_paths(models: "DiarizationModels", *, cache_dir: str | os.PathLike | None = None,
               force: bool = False) -> tuple[Path, Path]:
    """(segmentation ONNX, CAM++ ONNX) of the default models, exported on first need (torch and
    pyannote.audio are imported then only). ``cache_dir`` replaces the usual places (tests);
    ``force`` exports again even when the files exist."""
    seg_name, campp_name, _ = _names(models)
    return (_find_or_make(seg_name, cache_dir, force, export_segmentation, models.segmentation),
            _find_or_make(campp_name, cache_dir, force, export_campp, models.embedding))


def superseded_exports(models: "DiarizationModels", *, cache_dir: str | os.PathLike | None = None) -> list[Path]:
    """Exports of these weights made by earlier versions of dailies (another export or int8 version, other
    ranges): nothing reads them any more. Only files named as this module names them are listed."""
    names = _names(models)
    current = set(names)
    seg_sha, campp_sha = names[0].split("-")[2], names[1].split("-")[1]     # segmentation-3.0-SHA-vN, campplus-SHA-vN
    patterns = (f"segmentation-3.0-{seg_sha}-v*.onnx", f"campplus-{campp_sha}-v*.onnx")
    where = [Path(cache_dir)] if cache_dir is not None else cache_dirs()
    return sorted({f for d in where for pat in patterns for f in d.glob(pat)
                   if f.is_file() and f.name not in current})


def remove_superseded_exports(models: "DiarizationModels", *,
                              cache_dir: str | os.PathLike | None = None) -> tuple[int, int]:
    """Delete :func:`superseded_exports` where this user may; (files, bytes) removed."""
    files = size = 0
    for f in superseded_exports(models, cache_dir=cache_dir):
        try:
            n = f.stat().st_size
            f.unlink()
        except OSError:
            continue
        files, size = files + 1, size + n
    return files, size


def list_rows(models: "DiarizationModels") -> list[dict]:
    """The exports of ``models`` (for `dailies models list`): one row each, present or not yet made."""
    rows = []
    roles = (("pyannote/segmentation-3.0 (ONNX)", "diarization, run by ONNX Runtime (exported from the weights)"),
             ("CAM++ campplus_cn_en_common (ONNX)", "diarization, run by ONNX Runtime (exported from the weights)"),
             ("CAM++ campplus_cn_en_common (ONNX, int8)", "diarization's chunk embeddings on the CPU (quantised from "
              "the CAM++ export with the ranges shipped in dailies)"))
    for name, (what, role) in zip(_names(models), roles):
        found = next((d / name for d in cache_dirs() if (d / name).is_file()), None)
        rows.append({"name": what, "role": role,
                     "status": "present" if found else "missing", "path": str(found) if found else None,
                     "origin": "exported" if found else None, "sha256": file_sha256(found) if found else None,
                     **({} if found else {"detail": "made by `dailies models fetch`, or on first use"})})
    return rows


# ------------------------------------------------------------------------------------------------
# int8 CAM++: the engine's chunk embeddings on the CPU
# ------------------------------------------------------------------------------------------------
# Static int8, per output channel, QDQ, the convolutions only (everything else stays float), made from the float
# export with the activation ranges shipped beside this module (INT8_RANGES: ONNX Runtime's calibration cache,
# measured by scripts/make_int8_campp.py on 64 stretches of the AMI train files, which are CC BY 4.0; tuning
# data). 1.7x faster than the float file here. Cosine to the float embeddings: >= 0.99 on 5-9 s stretches of
# other AMI train audio, lower on short ones (1 s of held-out speech 0.92-0.99; min 0.84 over the stretches
# scripts/bench_speaker_nets.py cuts from sample.wav). The diarization engine embeds its (chunk, local speaker) masked speech with it, which only
# clustering reads; the refinement's segments and windows, which the voice registry reads, stay float
# (int8 there too lost cross-take identity on the held-out files: 94.8 -> 94.3 %). See load.CAMPP_INT8.

def int8_settings() -> dict[str, Any]:
    """quantize_static's arguments (besides the files and the ranges) of the int8 CAM++ (INT8_VERSION)."""
    from onnxruntime.quantization import QuantFormat, QuantType

    return {"quant_format": QuantFormat.QDQ, "per_channel": True, "activation_type": QuantType.QUInt8,
            "weight_type": QuantType.QInt8, "op_types_to_quantize": ["Conv"]}


def quantize_campp(float_path: str | os.PathLike, out_path: str | os.PathLike,
                   ranges: str | os.PathLike | None = None) -> Path:
    """Write the int8 CAM++ made from the float export ``float_path`` with the activation ranges ``ranges``
    (default ``INT8_RANGES``; no audio is read). Every convolution of the result reads int8 weights and int8
    activations, or an error says the ranges do not fit the export (a float export of another version)."""
    from onnxruntime.quantization import quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    ranges = Path(ranges if ranges is not None else INT8_RANGES)
    if not ranges.is_file():
        raise ModelError(f"{ranges}: the int8 CAM++'s activation ranges are missing from this installation of dailies.")
    with tempfile.TemporaryDirectory(prefix="dailies-int8-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(float_path), str(pre), skip_optimization=False, skip_symbolic_shape=True)
        quantize_static(str(pre), str(out_path), None, calibration_cache_path=str(ranges), **int8_settings())
    convs, quantised = conv_counts(out_path)
    if convs == 0 or quantised != convs:
        raise ModelError(f"{ranges}: these ranges do not fit the CAM++ export {Path(float_path).name} ({quantised} of "
                         f"{convs} convolutions quantised).")
    return Path(out_path)


def conv_counts(path: str | os.PathLike) -> tuple[int, int]:
    """(convolutions, convolutions whose input and weights are both dequantised int8) of an ONNX file."""
    import onnx

    graph = onnx.load(str(path)).graph
    made_by = {out: node.op_type for node in graph.node for out in node.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    quantised = sum(1 for n in convs if all(made_by.get(i) == "DequantizeLinear" for i in n.input[:2]))
    return len(convs), quantised


def int8_campp_path(models: "DiarizationModels", *, cache_dir: str | os.PathLike | None = None,
                    force: bool = False) -> Path:
    """The int8 CAM++ of the default models (:func:`quantize_campp`), made on first need from the float export
    (itself exported first if needed); cached beside the exports."""
    return _find_or_make(_names(models)[2], cache_dir, force, quantize_campp,
                         lambda: onnx_paths(models, cache_dir=cache_dir)[1], doing="making the int8 CAM++ from it")


# ------------------------------------------------------------------------------------------------
# running (ONNX Runtime, CPU)
# ------------------------------------------------------------------------------------------------

def _session(path: str | os.PathLike, threads: int | None, what: str, *, fixed_shapes: bool = True):
    import onnxruntime as ort

    from ..config import default_threads

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads or default_threads())
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.enable_mem_pattern = fixed_shapes      # planned buffers help one input shape, not many
    opts.log_severity_level = 3
    # ONNX Runtime's threads spin between runs by default: beside Whisper's threads, other jobs or a
    # loaded laptop that costs more than it saves (the CAM++ embeddings of sample.wav took 2x as long)
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if not Path(path).is_file():
        raise ModelError(f"{path}: the ONNX {what} model is missing; run `dailies models fetch`.")
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"{path}: cannot load the ONNX {what} model ({first[:200]}); delete it and run "
                         "`dailies models fetch`.") from None


class OnnxSegmentation:
    """segmentation-3.0 by ONNX Runtime: ``__call__(chunks (B, 1, 160000) float32)`` -> powerset
    log-probabilities (B, frames, 7) float32."""

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None):
        self.path = str(path)
        self.session = _session(path, threads, "segmentation")

    def __call__(self, chunks: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(chunks, dtype=np.float32)
        if x.ndim != 3 or x.shape[1] != 1:
            raise ValueError(f"segmentation input must be (batch, 1, samples), not {x.shape}")
        return self.session.run(None, {"waveforms": x})[0]


class OnnxCampp:
    """CAM++ by ONNX Runtime, with the interface of :class:`indexer.speakers.campplus.CamppEmbedder`
    that the diarization uses: ``embed``, ``embed_features`` and ``describe`` (the same description
    for the same weights, so that the resume cache's key does not change)."""

    def __init__(self, path: str | os.PathLike, weights_path: str | os.PathLike, *, threads: int | None = None,
                 verify: bool = True, precision: str = "float32"):
        self.precision = precision                  # "float32", or "int8" (int8_campp_path's file)
        weights = Path(weights_path)
        if weights.is_dir():
            weights = weights / WEIGHTS_FILE
        self.path = str(weights)                    # what describe() names: the weights, as CamppEmbedder
        self.onnx_path = str(path)
        self.sha256 = file_sha256(weights) if verify else None
        if verify and self.sha256 != WEIGHTS_SHA256:
            raise ModelError(f"{weights}: the CAM++ weights are corrupt (sha256 {self.sha256[:12]}… is not the "
                             f"expected {WEIGHTS_SHA256[:12]}…); delete the file and run `dailies models fetch`.")
        self.session = _session(path, threads, "CAM++" if precision == "float32" else f"{precision} CAM++",
                                fixed_shapes=False)

    def describe(self) -> dict[str, Any]:
        return {"name": CAMPP_NAME, "dim": EMBED_DIM, "path": self.path, "sha256": self.sha256,
                "features": "kaldi-fbank-80 cmn"}

    @staticmethod
    def fbank(waveform, *, normalize: bool = True) -> np.ndarray:
        """The network's front end (:func:`fbank`): what :meth:`embed_features` takes."""
        return fbank(waveform, normalize=normalize)

    def embed(self, waveform: np.ndarray) -> np.ndarray:
        """One embedding (192,) float32 of a whole 16 kHz mono waveform."""
        return self.embed_features([fbank(waveform)])[0]

    def embed_features(self, feats: list, *, bucket: int = 0, max_batch_frames: int = 6000) -> np.ndarray:
        """Embeddings (N, 192) of normalised fbank matrices (T_i, 80); empty matrices give NaN rows,
        batched as ``CamppEmbedder.embed_features`` batches them (:func:`campplus.equal_length_batches`)."""
        out = np.full((len(feats), EMBED_DIM), np.nan, dtype=np.float32)
        for part, mats in equal_length_batches([np.asarray(f, dtype=np.float32) for f in feats], bucket=bucket,
                                               max_batch_frames=max_batch_frames):
            out[part] = self.session.run(None, {"feats": np.stack(mats)})[0]
        return out


def load_nets(models: "DiarizationModels", *, threads: int | None = None, cache_dir: str | os.PathLike | None = None,
              verify: bool = False) -> tuple[OnnxSegmentation, OnnxCampp]:
    """Both networks ready to run, exported first if needed. An ONNX file that does not load (a
    corrupt or truncated file) is exported again once; if that fails too, one ModelError says why.
    ``verify``: check the CAM++ weights' sha256 (``diarization.resolve`` usually has)."""
    seg_path, campp_path = onnx_paths(models, cache_dir=cache_dir)
    try:
        seg = OnnxSegmentation(seg_path, threads=threads)
    except ModelError:
        seg_path = _reexport(models, seg_path, cache_dir, 0)
        seg = OnnxSegmentation(seg_path, threads=threads)
    try:
        campp = OnnxCampp(campp_path, models.embedding, threads=threads, verify=verify)
    except ModelError as exc:
        if verify and "weights are corrupt" in exc.message:
            raise
        campp_path = _reexport(models, campp_path, cache_dir, 1)
        campp = OnnxCampp(campp_path, models.embedding, threads=threads, verify=verify)
    return seg, campp


def load_int8_campp(models: "DiarizationModels", *, threads: int | None = None,
                    cache_dir: str | os.PathLike | None = None) -> OnnxCampp:
    """The int8 CAM++ (:func:`int8_campp_path`) ready to run; a file that does not load is made again once."""
    path = int8_campp_path(models, cache_dir=cache_dir)
    try:
        return OnnxCampp(path, models.embedding, threads=threads, verify=False, precision="int8")
    except ModelError:
        with contextlib.suppress(OSError):
            path.unlink()
        path = int8_campp_path(models, cache_dir=cache_dir, force=True)
        return OnnxCampp(path, models.embedding, threads=threads, verify=False, precision="int8")


def _reexport(models: "DiarizationModels", bad: Path, cache_dir, which: int) -> Path:
    """Export one network again after its file failed to load (the bad file is removed first; one
    that cannot be removed, in a read-only folder, is shadowed by a fresh export in a writable one)."""
    with contextlib.suppress(OSError):
        bad.unlink()
    seg_name, campp_name, _ = _names(models)
    name, export, source = ((seg_name, export_segmentation, models.segmentation),
                            (campp_name, export_campp, models.embedding))[which]
    folder = _writable_dir(Path(cache_dir) if cache_dir is not None else None)
    return _export_to(folder, name, export, source)
