"""One word diff for line search and script matching, in GNU wdiff notation.

``[-script words not said-]`` and ``{+words said, not in the script+}``; a substitution reads
``[-wants the report-]{+won't support+}``. Both sides are shown as written (the script's words, the
recogniser's words), although they are aligned on normalised tokens: a source word that yields several
tokens ("can't" = can not) is shown once, and a word is shown as said only when all of its tokens
matched.

An alignment is a list of groups ``(tag, script word indexes, said word indexes)`` with tag ``eq``,
``del`` (script words not said), ``ins`` (said words not in the script) or ``sub``; :func:`render`
turns it into the text and the lists of added, missing and substituted words.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Group = tuple[str, list[int], list[int]]


@dataclass
class Wdiff:
    text: str
    added: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    substituted: list[tuple[str, str]] = field(default_factory=list)


def _merge(groups: list[Group]) -> list[Group]:
    """Adjacent groups of one tag join; [-a-] next to {+b+} reads as a substitution."""
    out: list[Group] = []
    for tag, s_idx, t_idx in groups:
        if out and out[-1][0] == tag:
            out[-1][1].extend(s_idx)
            out[-1][2].extend(t_idx)
        elif out and tag != "eq" and out[-1][0] != "eq":
            prev = out.pop()
            out.append(("sub", prev[1] + list(s_idx), prev[2] + list(t_idx)))
        else:
            out.append((tag, list(s_idx), list(t_idx)))
    return out


def whole_words(groups: list[Group]) -> list[Group]:
    """The alignment with a word counted as matched only when all of its tokens matched: a token pair of an
    ``eq`` group whose script word or said word also has a token outside the ``eq`` groups becomes a
    substitution ("can't" = can + not against the line's "can" is a change, not a match; nor is "do"
    against "don't")."""
    dirty_s = {i for tag, s_idx, _ in groups if tag != "eq" for i in s_idx}
    dirty_t = {j for tag, _, t_idx in groups if tag != "eq" for j in t_idx}
    out: list[Group] = []
    for tag, s_idx, t_idx in groups:
        if tag == "eq" and (dirty_s.intersection(s_idx) or dirty_t.intersection(t_idx)):
            for i, j in zip(s_idx, t_idx):               # an eq group pairs its tokens one to one
                out.append(("eq" if i not in dirty_s and j not in dirty_t else "sub", [i], [j]))
        else:
            out.append((tag, s_idx, t_idx))
    return out


def render(groups: list[Group], script_words: list[str], said_words: list[str]) -> Wdiff:
    """The wdiff text of an alignment (see the module's docstring)."""
    groups = whole_words(groups)
    shown_s: set[int] = set()
    shown_t: set[int] = set()

    def words(idxs: list[int], source: list[str], shown: set[int]) -> str:
        new = [i for i in dict.fromkeys(idxs) if i not in shown]
        shown.update(new)
        return " ".join(source[i] for i in new)

    out = Wdiff("")
    parts: list[str] = []
    for tag, s_idx, t_idx in _merge(groups):
        if tag == "eq":
            shown_s.update(s_idx)
            txt = words(t_idx, said_words, shown_t)
            if txt:
                parts.append(txt)
            continue
        a, b = words(s_idx, script_words, shown_s), words(t_idx, said_words, shown_t)
        if a and b:
            parts.append("[-" + a + "-]{+" + b + "+}")
            out.substituted.append((a, b))
        elif a:
            parts.append("[-" + a + "-]")
            out.missing.append(a)
        elif b:
            parts.append("{+" + b + "+}")
            out.added.append(b)
    out.text = " ".join(parts)
    return out


def said(diff: str) -> str:
    """The words said, read back from a diff (script-only words dropped, markers removed)."""
    import re

    text = re.sub(r"\[-.*?-\]", " ", diff)
    text = text.replace("{+", " ").replace("+}", " ")
    return " ".join(text.split())
