"""The lined script and coverage pages in a real browser (issue 16, part A): Playwright driving Debian's
Chromium (headless) against `dailies serve`, set up as tests/test_server_browser.py does. On the fixture
shoot with fixtures/scene.fountain imported, and on a long screenplay from ../shared/eval/script."""

from __future__ import annotations

import re
from fractions import Fraction

import pytest

from conftest import EVAL, need
from test_server_browser import PRE_ROLL, TOKEN, launch, pw, serve  # noqa: F401  (pw: the fixture)

BIG_FISH = EVAL / "script" / "fountain" / "Big-Fish.fountain"


@pytest.fixture(scope="module")
def scripted_url(scripted_index):
    yield from serve(scripted_index)


@pytest.fixture(scope="module")
def chromium(pw, tmp_path_factory):  # noqa: F811
    ctx = launch(pw, tmp_path_factory.mktemp("chromium-profile"))
    yield ctx
    ctx.close()


@pytest.fixture()
def page(chromium, scripted_url):
    page = chromium.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{scripted_url}/?token={TOKEN}")                   # the token into a cookie
    yield page
    page.close()
    assert not errors, f"JavaScript errors: {errors}"


def pdf_pages(page) -> int:
    pdf = page.pdf(prefer_css_page_size=True, print_background=True)
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf))


def api_lined(page, url) -> dict:
    r = page.request.get(f"{url}/api/script")
    assert r.status == 200
    return r.json()


def test_fixture_scene_shows_one_take_line_per_take_with_take_2s_skipped_line_broken(page, scripted_url, manifest):
    data = api_lined(page, scripted_url)
    page.goto(f"{scripted_url}/script")
    lines = page.locator(".takeline")
    names = lines.evaluate_all("els => els.map(e => e.dataset.name)")
    assert sorted(names) == sorted(t["name"] for t in manifest["takes"] if t["scene"] == manifest["scene"])
    assert lines.locator(".tlabel").all_inner_texts() == [t["label"] for t in data["takes"]]
    take2 = next(t for t in data["takes"] if t["name"] == next(m["name"] for m in manifest["takes"] if m["take"] == 2))
    ids = {s["n"]: s["id"] for s in manifest["script_lines"]}
    stroke = "el => getComputedStyle(el, '::before').borderLeftStyle"
    for n, lid in ids.items():
        seg = page.locator(f".seg[data-take='{take2['take_id']}'][data-line='{lid}']")
        assert seg.count() == 1
        box = seg.bounding_box()
        assert box["height"] > 20 and box["width"] >= 8                      # a line one can click
        if n in next(m for m in manifest["takes"] if m["take"] == 2)["skipped_lines"]:
            assert seg.get_attribute("data-state") == "skipped" and seg.get_attribute("data-start") is None
            assert seg.evaluate(stroke) == "dashed"                           # drawn as not delivered
        else:
            assert seg.get_attribute("data-state") in ("delivered", "deviates")
            assert seg.evaluate(stroke) == "solid"
    # A deviation carries its mark and the wdiff of what was said (hover: the title).
    dev = page.locator(".seg[data-state='deviates']").first
    assert dev.locator(".dev").count() == 1 and "said:" in dev.get_attribute("title")
    assert re.search(r"\[-|\{\+", dev.get_attribute("data-diff"))
    # The segments sit beside the script lines they stand for.
    for lid in ids.values():
        seg_box = page.locator(f".seg[data-take='{take2['take_id']}'][data-line='{lid}']").bounding_box()
        rows = page.locator(f".r[data-line='{lid}']")
        top = min(rows.nth(i).bounding_box()["y"] for i in range(rows.count()))
        assert abs(seg_box["y"] - top) < 2


def test_clicking_take_3_at_line_12a_3_plays_that_delivery(page, scripted_url):
    data = api_lined(page, scripted_url)
    t3 = next(t for t in data["takes"] if t["take"] == "3")
    entry = next(ln for ln in t3["lines"] if ln["line_id"] == "12A/3")
    rate = Fraction(page.request.get(f"{scripted_url}/api/takes/{t3['take_id']}").json()["rate"])
    page.goto(f"{scripted_url}/script")
    page.evaluate("window.__seeks = []; document.getElementById('video')"
                  ".addEventListener('seeked', e => window.__seeks.push(e.target.currentTime))")
    seg = page.locator(f".seg[data-take='{t3['take_id']}'][data-line='12A/3']")
    assert float(seg.get_attribute("data-start")) == entry["start"]
    seg.click()
    page.wait_for_function("window.__seeks.length > 0", timeout=30000)
    assert abs(page.evaluate("window.__seeks[0]") - (entry["start"] - PRE_ROLL)) <= 1 / rate
    page.wait_for_function("t => { const v = document.getElementById('video'); return !v.paused && v.currentTime >= t }",
                           arg=entry["start"], timeout=30000)
    assert page.evaluate("document.getElementById('video').src").endswith(f"/media/{t3['take_id']}")
    assert "12A/3" in page.locator("#hitinfo").inner_text()
    if entry["state"] == "deviates":                       # tapped: what was said, beside the player
        assert page.locator("#hitinfo del, #hitinfo ins").count() >= 1


def test_filters_camera_circled_and_character(page, scripted_url):
    data = api_lined(page, scripted_url)
    page.goto(f"{scripted_url}/script")
    visible = "els => els.filter(e => e.offsetParent !== null).map(e => e.dataset.name)"
    page.select_option("#camera", "B")
    assert page.locator(".takeline").evaluate_all(visible) == [t["name"] for t in data["takes"] if t["camera"] == "B"]
    page.select_option("#camera", "")
    page.check("#circled")
    assert page.locator(".takeline").evaluate_all(visible) == [t["name"] for t in data["takes"] if t["circled"]]
    page.uncheck("#circled")
    page.select_option("#character", "MAYA")
    segs = page.locator(".seg").evaluate_all("els => els.filter(e => e.offsetParent !== null).map(e => e.dataset.character)")
    assert segs and set(segs) == {"MAYA"}
    assert len(segs) == sum(1 for t in data["takes"] for ln in t["lines"] if ln["character"] == "MAYA")


def test_coverage_cells_play_their_take_at_that_line(page, scripted_url):
    cov = page.request.get(f"{scripted_url}/api/coverage").json()
    page.goto(f"{scripted_url}/coverage")
    row = next(r for r in cov["rows"] if r["line_id"] == "12A/7")
    tid, cell = next((t, c) for t, c in row["cells"].items() if c["status"] == "delivered")
    rate = Fraction(page.request.get(f"{scripted_url}/api/takes/{tid}").json()["rate"])
    page.evaluate("window.__seeks = []; document.getElementById('video')"
                  ".addEventListener('seeked', e => window.__seeks.push(e.target.currentTime))")
    page.locator(f"a.play[data-take='{tid}'][data-line='12A/7']").click()
    page.wait_for_function("window.__seeks.length > 0", timeout=30000)
    assert abs(page.evaluate("window.__seeks[0]") - (cell["start"] - PRE_ROLL)) <= 1 / rate
    cells = page.locator("table.cov td.c[data-state]")
    assert cells.count() == sum(len(r["cells"]) for r in cov["rows"])


def test_printable_export_has_one_page_per_script_page(page, scripted_url):
    data = api_lined(page, scripted_url)
    page.goto(f"{scripted_url}/script")
    href = page.locator("#printlink").get_attribute("href")
    page.goto(f"{scripted_url}{href}")
    assert page.locator(".sheet").count() == len(data["pages"]) == data["pages_count"]
    # then the editor's log, a page per scene with takes (five takes fit one page)
    scenes = {t["scene"] for t in data["takes"]}
    assert page.locator(".log").count() == len(scenes) == 1
    assert pdf_pages(page) == len(data["pages"]) + len(scenes)


def test_a_long_screenplay_renders_every_page_without_overlap_or_lost_lines(chromium, tmp_path):
    """Big Fish (125 pages, many scenes): every dialogue line on the page as parsed, every row inside the
    sheet's text area (1" from the top, 55 lines of 1/6") and apart from the others, one printed page per
    script page."""
    from indexer.script import catalog, load_file
    from indexer.store import Index

    path = need(BIG_FISH)
    idx_path = tmp_path / "index"
    with Index.open_writer(idx_path) as idx:
        catalog.import_script(idx, path)
    parsed = load_file(path)
    assert len(parsed.scenes) > 50
    gen = serve(idx_path)
    url = next(gen)
    page = chromium.new_page()
    try:
        page.goto(f"{url}/?token={TOKEN}")
        page.goto(f"{url}/script/print")
        sheets = page.locator(".sheet")
        assert sheets.count() == parsed.pages
        said = page.evaluate("""() => { const out = {};
            for (const r of document.querySelectorAll('.r.dialogue[data-line], .r.lyrics[data-line]'))
              out[r.dataset.line] = (out[r.dataset.line] || '') + r.textContent;
            return out; }""")
        want = {ln.line_id: "".join(ln.text.split()) for ln in parsed.lines}
        assert {k: "".join(v.split()) for k, v in said.items()} == want
        bad = page.evaluate("""() => { const bad = []; const inch = 96;
            for (const sheet of document.querySelectorAll('.sheet')) {
              const s = sheet.getBoundingClientRect();
              if (sheet.scrollHeight > sheet.clientHeight || sheet.scrollWidth > sheet.clientWidth)
                bad.push(['overflow', sheet.dataset.page]);
              const rows = [...sheet.querySelectorAll('.r')].map(r => [r, r.getBoundingClientRect()]);
              rows.sort((a, b) => a[1].top - b[1].top);
              for (let i = 0; i < rows.length; i++) {
                const [r, b] = rows[i];
                if (b.top < s.top + 0.99 * inch || b.bottom > s.top + (1 + 55 / 6) * inch + 0.5 || b.left < s.left + 1.49 * inch
                    || b.right > s.left + 7.51 * inch) bad.push(['outside', sheet.dataset.page, r.textContent]);
                if (i && b.top < rows[i - 1][1].bottom - 0.5) bad.push(['overlap', sheet.dataset.page, r.textContent]);
              }
            }
            return bad; }""")
        assert bad == []
        assert pdf_pages(page) == parsed.pages
    finally:
        page.close()
        next(gen, None)


def test_the_version_is_chosen_in_the_page(chromium, scripted_index, tmp_path):
    """A second import of the screenplay (a line rewritten) is shown by default; the page's version menu
    brings back the first, as /api/script?version=1 gives it."""
    import shutil

    from conftest import FIXTURES
    from indexer.script import catalog
    from indexer.store import Index

    old = "I brought you coffee. Black, no sugar."
    new = "I brought you tea. Green, no honey."
    path = tmp_path / "index"
    shutil.copytree(scripted_index, path)
    revised = tmp_path / "scene.fountain"
    revised.write_text((FIXTURES / "scene.fountain").read_text().replace(old, new))
    with Index.open_writer(path) as idx:
        assert catalog.import_script(idx, revised).version == 2
    gen = serve(path)
    url = next(gen)
    page = chromium.new_page()
    try:
        page.goto(f"{url}/?token={TOKEN}")
        for v, text in ((2, new), (1, old)):
            data = page.request.get(f"{url}/api/script", params={"version": str(v)}).json()
            assert data["version"] == v and {"name": data["script"], "version": 1} in data["versions"]
            assert text in " ".join(r["text"] for r in data["pages"][0]["rows"] if r["line_id"] == "12A/3")
        page.goto(f"{url}/script")
        assert page.locator("#version option").count() == 2 and new[:20] in page.locator(".sheet").inner_text()
        page.select_option("#version", "1")
        page.wait_for_url("**/script?*version=1*")
        text = page.locator(".sheet").inner_text()
        assert old[:20] in text and new[:20] not in text
        assert page.locator(".takeline").count() == len(data["takes"])
    finally:
        page.close()
        next(gen, None)
