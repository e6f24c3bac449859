"""One PNG per page of the review room, for review by eye.

    python scripts/screenshots.py OUT_DIR [--index DIR] [--query TEXT]

Serves the index (default: the demo index, `make demo`) on a free local port, drives Debian's Chromium
(headless, Playwright) and writes search.png (hits shown), player.png (a hit playing), take.png, voices.png
(the voices page), notes.png (the review notes; an index without any shows the page's empty state), and, when a
screenplay is imported (`make demo` imports fixtures/scene.fountain), script.png (the lined script, a take line
playing) and coverage.png. Nothing is written to the index.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]


def serve(index: Path):
    import uvicorn

    from indexer.server import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(index), log_level="warning", access_log=False))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{sock.getsockname()[1]}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--index", type=Path, default=ROOT / "demo-index")
    ap.add_argument("--query", default="Then she can have it when the sky cooperates.")
    ap.add_argument("--chromium", default=os.environ.get("DAILIES_CHROMIUM", "/usr/bin/chromium"))
    args = ap.parse_args()
    if not (args.index / "catalog.sqlite").is_file():
        print(f"No index at {args.index}; run `make demo` first or pass --index DIR.", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    server, base = serve(args.index)
    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        ctx = p.chromium.launch_persistent_context(profile, executable_path=args.chromium, headless=True, args=ARGS,
                                                   viewport={"width": 1280, "height": 800})
        page = ctx.new_page()
        page.goto(base + "/")
        page.locator("#q").press_sequentially(args.query, delay=10)
        page.wait_for_function("q => new URLSearchParams(location.search).get('q') === q", arg=args.query,
                               timeout=60000)
        page.wait_for_function("() => [...document.querySelectorAll('.hit img')]"
                               ".every(i => i.complete && i.naturalWidth > 0)", timeout=60000)
        page.screenshot(path=str(args.out / "search.png"))
        page.evaluate("window.__seeks = []; document.getElementById('video')"
                      ".addEventListener('seeked', e => window.__seeks.push(e.target.currentTime))")
        page.locator(".hit").nth(1 if page.locator(".hit").count() > 1 else 0).click()
        page.wait_for_function("window.__seeks.length > 0", timeout=30000)
        time.sleep(1.5)
        page.evaluate("document.getElementById('video').pause(); document.getElementById('audio').pause()")
        time.sleep(0.3)
        page.screenshot(path=str(args.out / "player.png"))
        take_id = page.locator(".hit").first.get_attribute("data-take-id")
        takes = page.request.get(base + "/api/takes").json()
        video = next((t for t in takes if t["media_kind"] == "video" and t["n_lines"]), None)
        page.goto(f"{base}/take/{(video or {'take_id': take_id})['take_id']}?t=12")
        page.wait_for_function("() => document.querySelectorAll('.shot img').length > 0 && [...document"
                               ".querySelectorAll('.shot img')].every(i => i.complete && i.naturalWidth > 0)",
                               timeout=60000)
        time.sleep(0.5)
        page.screenshot(path=str(args.out / "take.png"), full_page=True)
        names = ["search.png", "player.png", "take.png", "voices.png", "notes.png"]
        page.goto(f"{base}/voices")
        page.wait_for_function("() => document.querySelectorAll('.voice').length > 0 || "
                               "document.getElementById('message').textContent.startsWith('No voices')", timeout=60000)
        time.sleep(0.5)
        page.screenshot(path=str(args.out / "voices.png"), full_page=True)
        page.goto(f"{base}/notes")
        page.wait_for_function("() => document.getElementById('message').textContent !== ''", timeout=60000)
        if page.locator(".noterow").count():
            page.locator(".noterow").first.click()
            page.wait_for_function("() => document.getElementById('tc').textContent.indexOf('-') < 0", timeout=30000)
            time.sleep(1.0)
            page.evaluate("document.getElementById('video').pause(); document.getElementById('audio').pause()")
        page.screenshot(path=str(args.out / "notes.png"))
        if page.request.get(base + "/api/script").ok:
            page.goto(base + "/script")
            seg = page.locator(".seg[data-start]")
            if seg.count():
                seg.nth(min(2, seg.count() - 1)).click()
                page.wait_for_function("() => document.getElementById('tc').textContent.indexOf('-') < 0",
                                       timeout=30000)
                time.sleep(1.0)
                page.evaluate("document.getElementById('video').pause(); document.getElementById('audio').pause()")
            page.set_viewport_size({"width": 1400, "height": 1150})
            page.screenshot(path=str(args.out / "script.png"))
            page.goto(base + "/coverage")
            page.screenshot(path=str(args.out / "coverage.png"), full_page=True)
            names += ["script.png", "coverage.png"]
        else:
            print("No screenplay in the index: no script.png or coverage.png (`dailies script import FILE`).",
                  file=sys.stderr)
        ctx.close()
    server.should_exit = True
    for name in names:
        print(args.out / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
