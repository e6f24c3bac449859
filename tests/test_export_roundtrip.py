"""Every string-out and log written is read back (with the OTIO adapter's reader where one can read it)
and each clip's source in/out must be the hit's TC exactly, for the fixture shoot's 23.976 NDF,
29.97 DF (across a minute boundary) and 25 fps takes. Hits are built from fixtures/manifest.json facts,
so no index (and no model) is needed here."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path
from xml.etree import ElementTree as ET

import opentimelineio as otio
import pytest

from conftest import absent

from indexer.export import plan_stringout, render_ale, render_stringout
from indexer.export.core import Source, cut_hit
from indexer.export.timeline import LogEntry, edl_strings, fcp7_string, fcpxml_string, otio_string
from indexer.records import Hit
from indexer.timecode import Clock, tc_to_frames

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "fixtures" / "manifest.json"


@pytest.fixture(scope="module")
def shoot() -> dict:
    if not MANIFEST.exists():
        absent("fixtures/manifest.json is absent (run scripts/make_fixtures.py)")
    return json.loads(MANIFEST.read_text())


@pytest.fixture(scope="module")
def sources(shoot) -> dict[str, Source]:
    out = {}
    for t in shoot["takes"]:
        rate = Fraction(t["rate"])
        frames = t["frames"] or math.ceil(t["duration"] * rate - 1e-6)
        audio = t.get("audio") or {}
        out[t["name"]] = Source(
            take_id=t["name"], path=str(ROOT / "fixtures" / t["file"]), name=t["name"], scene=t["scene"],
            take=str(t["take"]), camera=t["camera"], rate=rate, start_tc=t["start_tc"], frames=frames,
            has_video=t["kind"] != "audio_only", has_audio=bool(audio), audio_channels=audio.get("channels", 0),
            width=t["width"], height=t["height"], audio_rate=audio.get("sample_rate"))
    return out


def hit_at(src: Source, start: float, end: float, text: str, speaker: str | None = None, score: float = 1.0) -> Hit:
    clock = Clock.from_start_tc(src.start_tc, src.rate)
    return Hit(kind="line", clip=src.path, take_id=src.take_id, name=src.name, scene=src.scene, take=src.take,
               camera=src.camera, start=start, end=end, tc_in=clock.tc_in(start), tc_out=clock.tc_out(end),
               rate=str(src.rate), text=text, score=score, speaker=speaker)


def deliveries(shoot, sources, script_line: int) -> list[Hit]:
    """Every delivery of a script line, in manifest order (stands for a search's ranking)."""
    hits = []
    for t in shoot["takes"]:
        for d in t["deliveries"]:
            if d["script_line"] == script_line:
                hits.append(hit_at(sources[t["name"]], d["start"], d["end"], d["text"], d["character"]))
    return hits


def expected(hit: Hit, src: Source, handles: int) -> tuple[int, int]:
    """Source in/out frame counts (TC as frames) that the hit with clamped handles must have."""
    cut = cut_hit(hit, src, handles)
    base = src.start_frame
    first = tc_to_frames(hit.tc_in, src.rate)
    end = tc_to_frames(hit.tc_out, src.rate)
    assert cut.first == first - base and cut.end == end - base  # the cut is the hit's TC exactly
    return base + cut.src_in, base + cut.src_out


def frames_of(t) -> int:
    assert abs(t.value - round(t.value)) < 1e-6, t
    return int(round(t.value))


# ------------------------------------------------------------------------------------------ EDL

@pytest.mark.parametrize("handles", [0, 12])
def test_edl_round_trip_each_rate(shoot, sources, handles):
    hits = deliveries(shoot, sources, 7)          # delivered in T1, T2, T3 and the wild track
    plan = plan_stringout(hits, sources, handles=handles, title="line 7")
    edls = edl_strings(plan)
    labels = sorted(b.label for b, _ in edls)
    assert labels == ["23.976", "25", "29.97DF"]
    for base, text in edls:
        assert ("FCM: DROP FRAME" in text) == base.drop_frame
        assert ("FCM: NON-DROP FRAME" in text) == (not base.drop_frame)
        tl = otio.adapters.read_from_string(text, "cmx_3600", rate=float(base.rate))
        group = [c for c in plan.cuts if c.source.base == base]
        clips = []
        for track in tl.tracks:
            for c in track.find_clips():
                if track.kind == otio.schema.TrackKind.Video or not any(
                        s.name == c.name and s.has_video for s in sources.values()):
                    clips.append(c)
        assert [c.name for c in clips] == [c.source.name for c in group]
        for clip, cut in zip(clips, group):
            a, b = expected(cut.hit, cut.source, handles)
            assert frames_of(clip.source_range.start_time) == a
            assert frames_of(clip.source_range.end_time_exclusive()) == b
            if handles == 0:
                rate = float(base.rate)
                assert otio.opentime.to_timecode(clip.source_range.start_time, rate, base.drop_frame) == cut.hit.tc_in
                assert otio.opentime.to_timecode(clip.source_range.end_time_exclusive(), rate,
                                                 base.drop_frame) == cut.hit.tc_out
            # reel and clip name as CMX wants them
            assert clip.metadata["cmx_3600"]["reel"] == plan.reels[cut.source.take_id]
            assert len(plan.reels[cut.source.take_id]) <= 8


def test_edl_drop_frame_across_a_minute(sources):
    t2 = sources["12A_T2_CamA"]                 # starts 01:00:59;20, so frame 10 is 01:01:00;02
    hit = hit_at(t2, 5 / float(t2.rate), 20 / float(t2.rate), "across the minute")
    assert (hit.tc_in, hit.tc_out) == ("01:00:59;25", "01:01:00;12")
    plan = plan_stringout([hit], sources, handles=0, title="df")
    [(base, text)] = edl_strings(plan)
    event = next(line for line in text.splitlines() if line.startswith("001"))
    fields = event.split()
    assert fields[4:6] == ["01:00:59;25", "01:01:00;12"]
    assert fields[6:8] == ["01:00:00;00", "01:00:00;15"]     # 15 frames recorded from 01:00:00;00
    assert "FCM: DROP FRAME" in text
    tl = otio.adapters.read_from_string(text, "cmx_3600", rate=float(t2.rate))
    [clip] = list(tl.video_tracks()[0].find_clips())     # a B event: also on A1
    assert [c.name for c in tl.audio_tracks()[0].find_clips()] == [clip.name]
    assert frames_of(clip.source_range.duration) == 15


# ------------------------------------------------------------------------------------------ OTIO / FCP7 XML

def test_otio_round_trip_mixed_rates(shoot, sources):
    hits = deliveries(shoot, sources, 7)
    plan = plan_stringout(hits, sources, handles=12)
    tl = otio.adapters.read_from_string(otio_string(plan), "otio_json")
    video, audio = tl.video_tracks()[0], tl.audio_tracks()[0]
    vclips = list(video.find_clips())
    assert [c.name for c in vclips] == [c.source.name for c in plan.cuts if c.source.has_video]
    assert [c.name for c in audio.find_clips()] == [c.source.name for c in plan.cuts if c.source.has_audio]
    for clip in list(video.find_clips()) + list(audio.find_clips()):
        cut = next(c for c in plan.cuts if c.source.name == clip.name)
        a, b = expected(cut.hit, cut.source, 12)
        assert clip.source_range.start_time.rate == pytest.approx(float(cut.source.rate))
        assert frames_of(clip.source_range.start_time) == a
        assert frames_of(clip.source_range.end_time_exclusive()) == b
        avail = clip.media_reference.available_range
        assert frames_of(avail.start_time) == cut.source.start_frame
        assert frames_of(avail.duration) == cut.source.frames
    # markers: over the hit itself (handles excluded), named speaker: text
    for clip in vclips:
        cut = next(c for c in plan.cuts if c.source.name == clip.name)
        [m] = clip.markers
        assert m.name == f"{cut.hit.speaker}: {cut.hit.text}"
        assert frames_of(m.marked_range.start_time) == tc_to_frames(cut.hit.tc_in, cut.source.rate)
        assert frames_of(m.marked_range.end_time_exclusive()) == tc_to_frames(cut.hit.tc_out, cut.source.rate)
    # back to back, and the timeline at the most common source rate (23.976: T1 and the wild track)
    assert tl.global_start_time.rate == pytest.approx(24000 / 1001)
    assert otio.opentime.to_timecode(tl.global_start_time) == "01:00:00:00"


def test_fcp7_xml_round_trip(shoot, sources):
    hits = deliveries(shoot, sources, 2)          # T1 (23.976), T2 (29.97 DF), T3 twice (25)
    plan = plan_stringout(hits, sources, handles=12, one_per_take=True)
    text = fcp7_string(plan)
    tl = otio.adapters.read_from_string(text, "fcp_xml")
    seq_rate = float(plan.base.rate)
    vclips = list(tl.video_tracks()[0].find_clips())
    assert [c.name for c in vclips] == ["12A_T1_CamA", "12A_T2_CamA", "12A_T3_CamB"]
    for clip, cut in zip(vclips, plan.cuts):
        a, b = expected(cut.hit, cut.source, 12)
        assert frames_of(clip.source_range.start_time) == a
        # The reader derives a clip's out from its length in the sequence, which is only whole frames
        # of the clip's own rate when the rates agree; the XML's own <out> is exact for every clip.
        if float(cut.source.rate) == seq_rate:
            assert frames_of(clip.source_range.end_time_exclusive()) == b
        tc = clip.media_reference.metadata["fcp_xml"]["timecode"]
        assert tc["displayformat"] == ("DF" if cut.source.drop_frame else "NDF")
    files = {f.findtext("name"): f for f in ET.fromstring(text).iter("file") if f.find("timecode") is not None}
    for cut in plan.cuts:
        tc = files[cut.source.name].find("timecode")
        assert tc.findtext("string") == cut.source.start_tc
        assert int(tc.findtext("frame")) == cut.source.start_frame
        assert tc.findtext("reel/name") == plan.reels[cut.source.take_id]
    items = [e for e in ET.fromstring(text).iter("clipitem") if e.find("in") is not None]
    video_items = items[: len(plan.cuts)]
    for item, cut in zip(video_items, plan.cuts):
        assert int(item.findtext("in")) == cut.src_in
        assert int(item.findtext("out")) == cut.src_out
        marker = item.find("marker")            # FCP 7 counts clip markers from the media's first frame
        assert int(marker.findtext("in")) == cut.first
        assert int(marker.findtext("out")) == cut.end


# ------------------------------------------------------------------------------------------ FCPXML

def _fcpx_time(value: str) -> Fraction:
    return Fraction(value[:-1]) if value != "0s" else Fraction(0)


def test_fcpxml_exact_times(shoot, sources):
    hits = deliveries(shoot, sources, 7)
    plan = plan_stringout(hits, sources, handles=12, rate="25")
    root = ET.fromstring(fcpxml_string(plan))
    assert root.get("version") == "1.8"
    seq = root.find("./library/event/project/sequence")
    assert seq.get("tcFormat") == "NDF" and _fcpx_time(seq.get("tcStart")) == 3600
    clips = seq.findall("./spine/asset-clip")
    assert [c.get("name") for c in clips] == [c.source.name for c in plan.cuts]
    offset = None
    for clip, cut in zip(clips, plan.cuts):
        rate = cut.source.rate
        a, b = expected(cut.hit, cut.source, 12)
        start = _fcpx_time(clip.get("start")) * rate
        assert start == a
        assert clip.get("tcFormat") == ("DF" if cut.source.drop_frame else "NDF")
        if rate == 25:
            assert start + _fcpx_time(clip.get("duration")) * rate == b
        this = _fcpx_time(clip.get("offset")) * 25
        assert this.denominator == 1                      # on the project's frame grid
        assert offset is None or this >= offset
        offset = this
        marker = clip.find("marker")
        assert _fcpx_time(marker.get("start")) * rate == tc_to_frames(cut.hit.tc_in, rate)


def test_fcpxml_read_by_adapter_at_25(sources):
    t3 = sources["12A_T3_CamB"]
    plan = plan_stringout([hit_at(t3, 5.929, 9.125, "The comet won't wait", "MAYA")], sources, handles=12)
    tl = otio.adapters.read_from_string(fcpxml_string(plan), "fcpx_xml")
    [clip] = list(tl.find_clips())
    a, b = expected(plan.cuts[0].hit, t3, 12)
    assert frames_of(clip.source_range.start_time) == a
    assert frames_of(clip.source_range.end_time_exclusive()) == b


# ------------------------------------------------------------------------------------------ handles

def test_handles_clamped_at_media_ends(sources, tmp_path):
    t1 = sources["12A_T1_CamA"]
    last = t1.frames
    first_hit = hit_at(t1, 0.0, 0.5, "at the very start")
    last_hit = hit_at(t1, (last - 5) / float(t1.rate), last / float(t1.rate), "at the very end")
    plan = plan_stringout([first_hit, last_hit], sources, handles=12, title="ends")
    start_cut, end_cut = plan.cuts
    assert (start_cut.head, start_cut.tail) == (0, 12) and start_cut.tc_in == "01:00:00:00"
    assert (end_cut.head, end_cut.tail) == (12, 0) and end_cut.src_out == last
    [(path, text, _)] = render_stringout(plan, "edl", tmp_path / "ends.edl")
    tl = otio.adapters.read_from_string(text, "cmx_3600", rate=float(t1.rate))
    a, b = [c for c in tl.tracks[0].find_clips()]
    assert otio.opentime.to_timecode(a.source_range.start_time) == t1.start_tc      # never before the first frame
    assert frames_of(b.source_range.end_time_exclusive()) == t1.start_frame + last  # never after the last


def test_handles_never_negative_tc(sources):
    src = Source(take_id="zero", path="/x/zero.mov", name="zero", scene=None, take=None, camera=None,
                 rate=Fraction(25), start_tc="00:00:00:00", frames=100)
    plan = plan_stringout([hit_at(src, 0.04, 1.0, "near zero")], {"zero": src}, handles=12)
    [(base, text)] = edl_strings(plan)
    fields = next(x for x in text.splitlines() if x.startswith("001")).split()
    assert fields[4] == "00:00:00:00" and fields[5] == "00:00:01:12"


# ------------------------------------------------------------------------------------------ ALE

def test_ale_round_trip(sources, tmp_path):
    entries = [LogEntry(s, ["LEO", "MAYA"] if s.has_audio else [], "You're still here? It's ...",
                        ["12A/1", "12A/2"] if s.has_audio else []) for s in sources.values()]
    outputs = render_ale(entries, tmp_path / "shoot.ale")
    names = sorted(p.name for p, _, _ in outputs)
    assert names == ["shoot_23.976.ale", "shoot_25.ale", "shoot_29.97DF.ale"]
    seen = set()
    for path, text, _ in outputs:
        header = dict(line.split("\t", 1) for line in text.split("Column")[0].splitlines()[1:] if "\t" in line)
        col = otio.adapters.read_from_string(text, "ale")
        for clip in col:
            src = sources[clip.name]
            seen.add(clip.name)
            assert header["FPS"] == {Fraction(24000, 1001): "23.976", Fraction(25): "25",
                                     Fraction(30000, 1001): "29.97"}[src.rate]
            ale = clip.metadata["ALE"]
            assert ale["Start"] == src.start_tc if "Start" in ale else True
            assert frames_of(clip.source_range.start_time) == src.start_frame
            assert frames_of(clip.source_range.end_time_exclusive()) == src.start_frame + src.frames
            assert ale["FPS"] == header["FPS"]
            assert ale["Scene"] == "12A" and ale["Take"] == src.take
            assert ale["Tape"] and len(ale["Tape"]) <= 8
            if src.has_audio:
                assert ale["Speakers"] == "LEO, MAYA" and ale["Script lines"] == "12A/1, 12A/2"
        # drop-frame starts are written with ';'
        for line in text.split("Data")[1].strip().splitlines():
            name, _tracks, start = line.split("\t")[:3]
            assert start == sources[name].start_tc
    assert seen == set(sources)
