"""Rich renderings of search hits and status (human output)."""

from __future__ import annotations

import re
from fractions import Fraction

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from indexer.timecode import rate_label

_DIFF = re.compile(r"\[-(.*?)-\]|\{\+(.*?)\+\}")


def clip_column(t: Table, names, header: str = "clip") -> None:
    """A clip-name column: a name is never broken into pieces; it is as wide as the longest name up to
    24 characters, and a longer one is cut with an ellipsis (the full path is in --json)."""
    longest = max((len(n) for n in names), default=len(header))
    t.add_column(header, no_wrap=True, overflow="ellipsis", min_width=min(max(longest, len(header)), 24))


def shorten(text: str, width: int = 60) -> str:
    """A query or line as echoed in a title or message: at most about ``width`` characters."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    return text[:width].rsplit(" ", 1)[0] + f" … ({len(text)} characters)"


def plain_output(console) -> bool:
    """Styles would be lost (not a terminal, or NO_COLOR): print the diff's markers instead."""
    return not console.is_terminal or console.no_color


def diff_legend(script: bool, markers: bool) -> str:
    """The legend under a table of diffs; ``markers``: the diff is printed in wdiff notation."""
    what = "script" if script else "line's"
    if markers:
        return f"[-…-]: {what} words not said · {{+…+}}: said, not in the {'script' if script else 'line'}"
    return (f"[red strike]struck[/]: {what} words not said · [green underline]underlined[/]: said, "
            f"not in the {'script' if script else 'line'}")


def diff_text(diff: str | None, fallback: str, markers: bool = False) -> Text:
    """Render a wdiff-style diff: [-script words not said-] struck red, {+words added+} green; with
    ``markers`` (output that is not a terminal: piped, saved, or NO_COLOR) the wdiff notation itself,
    since styles would be dropped with nothing in their place."""
    if not diff:
        return Text(fallback)
    if markers:
        return Text(diff)
    out = Text()
    pos = 0
    for m in _DIFF.finditer(diff):
        out.append(diff[pos:m.start()])
        if m.group(1) is not None:
            out.append(m.group(1), style="red strike")
            if diff[m.end():m.end() + 2] == "{+":
                out.append(" ")        # keep "[-said-]{+heard+}" readable when styles are lost
        else:
            out.append(m.group(2), style="green underline")
        pos = m.end()
    out.append(diff[pos:])
    return out


def hits_table(hits, query: str, markers: bool = False) -> Table:
    n_takes = len({h.take_id for h in hits})
    t = Table(title=f"“{shorten(query)}” — {len(hits)} hit{'s' if len(hits) != 1 else ''} in "
                    f"{n_takes} take{'s' if n_takes != 1 else ''}"
                    + (" (● circled take)" if any(h.circled for h in hits) else ""),
              caption=diff_legend(False, markers), show_lines=False, expand=True, box=box.SIMPLE_HEAD,
              pad_edge=False)
    clip_column(t, [h.name for h in hits])
    t.add_column("sc/tk", no_wrap=True)
    t.add_column("TC in", no_wrap=True, min_width=11)
    t.add_column("TC out", no_wrap=True, min_width=11)
    t.add_column("match", justify="right", no_wrap=True)
    t.add_column("delivered", ratio=3, overflow="fold")
    prev = None
    for h in hits:
        same = h.take_id == prev
        prev = h.take_id
        sctk = ("/".join(x for x in (h.scene or "", h.take or "") if x) or "—") + (" ●" if h.circled else "")
        said = diff_text(h.diff, h.text, markers)
        if h.speaker:
            said = Text.assemble((f"{h.speaker}: ", "bold"), said)
        t.add_row("" if same else h.name, "" if same else sctk, h.tc_in, h.tc_out, f"{(h.match or 0):.0%}", said)
    return t


def speaker_table(hits, who: str) -> Table:
    t = Table(title=f"{who} — {len(hits)} line{'s' if len(hits) != 1 else ''} in "
                    f"{len({h.take_id for h in hits})} takes", box=box.SIMPLE_HEAD, pad_edge=False, expand=True)
    clip_column(t, [h.name for h in hits])
    t.add_column("TC in", no_wrap=True, min_width=11)
    t.add_column("TC out", no_wrap=True, min_width=11)
    t.add_column("conf.", justify="right", no_wrap=True)
    t.add_column("line", ratio=3, overflow="fold")
    prev = None
    for h in hits:
        conf = "" if h.speaker_confidence is None else f"{h.speaker_confidence:.2f}" + (" ov" if h.overlap else "")
        t.add_row("" if h.take_id == prev else h.name, h.tc_in, h.tc_out, conf, h.text)
        prev = h.take_id
    return t


def shots_table(hits, title: str) -> Table:
    t = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, expand=True)
    clip_column(t, [f"{h.name} #{h.shot}" for h in hits], "clip / shot")
    t.add_column("TC in", no_wrap=True, min_width=11)
    t.add_column("TC out", no_wrap=True, min_width=11)
    t.add_column("speaks", justify="right", no_wrap=True)
    t.add_column("said", ratio=2, overflow="fold")
    for h in hits:
        said = h.text if len(h.text) <= 70 else h.text[:67].rsplit(" ", 1)[0] + " ..."
        t.add_row(f"{h.name} #{h.shot}", h.tc_in, h.tc_out,
                  f"{h.rankers.get('seconds', 0):.1f}s {h.score:.0%}", said)
    return t


def channels_label(channels: list[dict]) -> str | None:
    """A take's sound channels in one line ("1 mix MIX · 3 iso LEO"), None for a mono or unknown take."""
    if len(channels or []) < 2:
        return None
    parts = []
    for c in channels:
        who = c.get("owner") or (c.get("name") if c.get("name") and c["name"].upper() != c["role"].upper() else None)
        parts.append(f"{c['channel']} {c['role']}" + (f" {who}" if who else ""))
    return " · ".join(parts)


def status_view(path: str, meta: dict, stats: dict, takes: list[dict], failed: list[dict]):
    head = Text.assemble(
        ("Index ", "bold"), (path, "bold"), "  ",
        (f"{stats['indexed']} takes indexed, {stats['lines']} lines, {stats['shots']} shots, "
         f"{stats.get('voices', 0)} voices, {stats.get('frames', 0)} picture frames"
         + (f", {stats['circled']} circled" if stats.get("circled") else "")
         + (f", {stats['review_notes']} review notes" if stats.get("review_notes") else ""), ""),
        (f", {stats['failed_files']} files failed" if stats["failed_files"] else "", "red"),
        (f"  (schema {meta.get('schema_version')}, created {meta.get('created_at')} by {meta.get('created_by')})", "dim"),
    )
    t = Table(show_lines=False, expand=True, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    clip_column(t, [r["name"] for r in takes])
    t.add_column("sc/tk/cam", no_wrap=True)
    t.add_column("rate", no_wrap=True)
    t.add_column("start TC", no_wrap=True, min_width=11)
    t.add_column("dur", justify="right", no_wrap=True)
    t.add_column("lines", justify="right", no_wrap=True, min_width=5)
    t.add_column("shots", justify="right", no_wrap=True, min_width=5)
    t.add_column("status", no_wrap=True, min_width=7)
    models_used: dict[str, int] = {}
    for r in takes:
        models = r.get("models") or {}
        w = models.get("whisper", {})
        sh = models.get("shots", {})
        dz = models.get("diarization", {})
        cl = models.get("clip", {})
        for desc in (f"whisper {w.get('name')} [{w.get('origin')}, {w.get('compute_type')} on {w.get('device')}]"
                     if w else "", f"shots: PySceneDetect {sh.get('detector')} {sh.get('version')}" if sh else "",
                     f"text embedding: {models['text_embedding']['name']}" if models.get("text_embedding") else "",
                     ("speakers: none (" + dz["skipped"].split(";")[0] + ")" if "skipped" in dz else
                      f"speakers: {dz.get('segmentation')} + {dz.get('embedding')}") if dz else "",
                     ("picture: none (" + cl["skipped"].split(";")[0] + ")" if "skipped" in cl else
                      f"picture: {cl.get('name')}") if cl else ""):
            if desc:
                models_used[desc] = models_used.get(desc, 0) + 1
        sctk = "/".join(x or "—" for x in (r.get("scene"), r.get("take"), r.get("camera")))
        status = r["status"]
        t.add_row(r["name"], sctk, rate_label(Fraction(r["rate"]), bool(r["drop_frame"])), r["start_tc"], f"{(r.get('duration') or 0):.1f}s",
                  str(r["n_lines"]), str(r["n_shots"]), status)
    parts = [head, t]
    poly = [(r["name"], channels_label(r.get("channels") or [])) for r in takes
            if any(c["role"] == "iso" for c in r.get("channels") or [])]
    for name, label in poly[:8]:
        parts.append(Text(f"Production sound, {name}: {label} (isos transcribed where their owner speaks)",
                          style="dim"))
    if len(poly) > 8:
        parts.append(Text(f"... and {len(poly) - 8} more takes with iso tracks (`dailies status --json`)", style="dim"))
    sound_only = [r["name"] for r in takes if not r.get("has_video") and r.get("status") == "indexed"]
    if sound_only:
        from indexer.config import DEFAULT_AUDIO_TC_RATE

        names = ", ".join(sound_only[:4]) + (", …" if len(sound_only) > 4 else "")
        parts.append(Text(f"Sound-only takes ({names}) count timecode at the rate their iXML states, else "
                          f"{rate_label(DEFAULT_AUDIO_TC_RATE, False)} fps (--audio-tc-rate when indexing).",
                          style="dim"))
    if models_used:
        parts.append(Text("Models: " + "; ".join(f"{d} ({n} take{'s' if n != 1 else ''})"
                                                   for d, n in models_used.items()), style="dim"))
    if failed:
        ft = Table(title="Files that failed", show_header=True, box=box.SIMPLE_HEAD, pad_edge=False, expand=True)
        ft.add_column("file", overflow="fold")
        ft.add_column("reason", overflow="fold")
        for f in failed:
            ft.add_row(f["path"], f.get("error") or "")
        parts.append(ft)
    return Group(*parts)


def visual_table(hits, query: str) -> Table:
    t = Table(title=f"“{query}” — {len(hits)} shot{'s' if len(hits) != 1 else ''}", box=box.SIMPLE_HEAD,
              pad_edge=False, expand=True)
    clip_column(t, [f"{h.name} #{h.shot}" for h in hits], "clip / shot")
    t.add_column("TC in", no_wrap=True, min_width=11)
    t.add_column("TC out", no_wrap=True, min_width=11)
    t.add_column("best frame", no_wrap=True, min_width=11)
    t.add_column("score", justify="right", no_wrap=True)
    t.add_column("tags · said", ratio=2, overflow="fold")
    for h in hits:
        said = h.text if len(h.text) <= 60 else h.text[:57].rsplit(" ", 1)[0] + " ..."
        t.add_row(f"{h.name} #{h.shot}", h.tc_in, h.tc_out, h.frame_tc or "", f"{h.score:.2f}",
                  Text.assemble((" ".join(h.tags), "dim"), (" · " if h.tags and said else ""), said))
    return t
