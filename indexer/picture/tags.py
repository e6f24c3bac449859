"""Zero-shot shot tags: an editable vocabulary of questions (INT/EXT, DAY/NIGHT, framing, ...) answered
for every shot by CLIP's text tower (:class:`Tagger`), and how a tag is named and stored."""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError
from .embedder import ClipEmbedder, unit

DEFAULT_VOCABULARY = """\
# dailies zero-shot shot tags (CLIP). Edit freely and pass the file with --tag-vocabulary FILE.
# Each table is one question asked of every shot: the shot gets the ONE label of the table whose
# prompts its frames match best (if that label's confidence reaches min_confidence). A label is what
# `--tag LABEL` filters on; its prompts describe it in plain words. "{}" in a template is replaced by
# each prompt, and a label's vector is the mean of all its prompts in all the templates.

[settings]
templates = ["a film still of {}.", "a photo of {}.", "{}."]
min_confidence = 0.0

[place]
INT = ["an interior", "a room inside a building", "an indoor scene"]
EXT = ["an exterior", "the outdoors", "an outdoor scene under the open sky"]

[time]
DAY = ["daytime", "a scene in daylight", "a bright sunny day"]
NIGHT = ["night time", "a dark night scene", "a scene at night lit by lamps"]

[framing]
close-up = ["a close-up of a face", "a close-up shot", "an extreme close-up of a detail"]
medium = ["a medium shot of a person from the waist up", "a medium shot"]
wide = ["a wide shot", "a wide establishing shot of a landscape", "a full shot of people in a place"]

[people]
no-people = ["an empty place with no people", "a scene without any person"]
one-person = ["one person", "a single person alone"]
two-people = ["two people", "a conversation between two people"]
group = ["a group of people", "a crowd"]

[look]
live-action = ["a live-action movie scene", "a real photograph"]
animation = ["a cartoon", "an animated film", "a drawing"]

[color]
color = ["a color image", "a colorful scene"]
black-and-white = ["a black and white image", "a monochrome film"]
"""


@dataclass
class TagGroup:
    name: str
    labels: dict[str, list[str]]          # label -> prompts


@dataclass
class Vocabulary:
    groups: list[TagGroup]
    templates: list[str] = field(default_factory=lambda: ["{}"])
    min_confidence: float = 0.0
    source: str = "built-in"

    def key(self) -> str:
        """Identifies the vocabulary's content (recorded with each take; changed vocabulary -> re-tag)."""
        blob = json.dumps([self.templates, self.min_confidence, [asdict(g) for g in self.groups]], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def labels(self) -> list[str]:
        return [lab for g in self.groups for lab in g.labels]


def tag_slug(label: str) -> str:
    """How a label is matched and stored: lower case, runs of other characters as '-' ("Close Up" ->
    "close-up")."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def load_vocabulary(path: str | os.PathLike | None = None) -> Vocabulary:
    """The tag vocabulary from a TOML or JSON file (see :data:`DEFAULT_VOCABULARY`), or the built-in one."""
    if path is None:
        import tomllib

        return _vocabulary_from(tomllib.loads(DEFAULT_VOCABULARY), "built-in")
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{p}: no such tag vocabulary file.") from None
    except OSError as exc:
        raise UsageError(f"{p}: cannot be read ({exc.strerror}).") from None
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import tomllib

            data = tomllib.loads(text)
    except (ValueError, json.JSONDecodeError) as exc:
        raise UsageError(f"{p}: not a valid tag vocabulary ({str(exc).splitlines()[0]}).") from None
    return _vocabulary_from(data, str(p))


def _vocabulary_from(data: Any, where: str) -> Vocabulary:
    if not isinstance(data, dict):
        raise UsageError(f"{where}: a tag vocabulary is a table of questions, each a table of label = [prompts].")
    settings = data.get("settings", {}) or {}
    templates = settings.get("templates", ["{}"])
    if isinstance(templates, str):
        templates = [templates]
    if not templates or not all(isinstance(t, str) and "{}" in t for t in templates):
        raise UsageError(f"{where}: settings.templates must be a list of texts each containing {{}}.")
    try:
        min_conf = float(settings.get("min_confidence", 0.0))
    except (TypeError, ValueError):
        raise UsageError(f"{where}: settings.min_confidence must be a number between 0 and 1.") from None
    groups: list[TagGroup] = []
    seen: dict[str, str] = {}
    for gname, table in data.items():
        if gname == "settings":
            continue
        if not isinstance(table, dict) or len(table) < 2:
            raise UsageError(f"{where}: [{gname}] must list at least two labels, each label = [\"prompt\", ...].")
        labels: dict[str, list[str]] = {}
        for label, prompts in table.items():
            if isinstance(prompts, str):
                prompts = [prompts]
            if not isinstance(prompts, list) or not prompts or not all(isinstance(x, str) and x.strip()
                                                                      for x in prompts):
                raise UsageError(f"{where}: label '{label}' in [{gname}] needs a list of prompts (texts).")
            slug = tag_slug(label)
            if not slug:
                raise UsageError(f"{where}: label '{label}' in [{gname}] has no letters or digits.")
            if slug in seen:
                raise UsageError(f"{where}: label '{label}' appears in both [{seen[slug]}] and [{gname}].")
            seen[slug] = gname
            labels[str(label)] = [x.strip() for x in prompts]
        groups.append(TagGroup(str(gname), labels))
    if not groups:
        raise UsageError(f"{where}: the tag vocabulary has no questions (tables of labels).")
    return Vocabulary(groups, list(templates), min_conf, where)


@dataclass
class ShotTag:
    group: str
    label: str
    score: float                           # softmax confidence within the group (0..1)

    @property
    def slug(self) -> str:
        return tag_slug(self.label)


class Tagger:
    """Zero-shot classifier: one text vector per label (mean over prompts x templates), built once."""

    def __init__(self, embedder: ClipEmbedder, vocabulary: Vocabulary):
        self.vocabulary = vocabulary
        self.scale = embedder.logit_scale
        self._groups: list[tuple[TagGroup, list[str], np.ndarray]] = []
        for g in vocabulary.groups:
            names = list(g.labels)
            rows = []
            for label in names:
                texts = [t.format(p) for p in g.labels[label] for t in vocabulary.templates]
                rows.append(embedder.embed_texts(texts).mean(axis=0))
            self._groups.append((g, names, unit(np.stack(rows))))

    def tag(self, vectors: np.ndarray) -> list[list[ShotTag]]:
        """Tags for each row of ``vectors`` (unit image vectors; a shot's mean frame vector)."""
        out: list[list[ShotTag]] = [[] for _ in range(len(vectors))]
        if not len(vectors):
            return out
        v = unit(vectors)
        for g, names, w in self._groups:
            logits = self.scale * (v @ w.T)
            logits -= logits.max(axis=1, keepdims=True)
            p = np.exp(logits)
            p /= p.sum(axis=1, keepdims=True)
            best = p.argmax(axis=1)
            for i, b in enumerate(best):
                if p[i, b] >= self.vocabulary.min_confidence:
                    out[i].append(ShotTag(g.name, names[b], float(p[i, b])))
        return out


def tag_key(slug: str) -> str:
    """The metadata key a frame carries (True) when its shot has the tag ``slug``."""
    return f"tag_{slug.replace('-', '_')}"
