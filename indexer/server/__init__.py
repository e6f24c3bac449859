"""The review room: ``dailies serve``. A Starlette app over one index, for many readers.

* ``/api/...`` returns exactly what the CLI's ``--json`` prints (built by :mod:`indexer.views`), each hit
  or take with a ``media_url``; pages (``/``, ``/take/ID``, ``/voices``) are templates whose JavaScript uses
  only the API.
* ``/script`` the lined script (``/script/print`` its print-ready pages), ``/coverage`` the coverage matrix,
  each over ``/api/script`` and ``/api/coverage`` (``?script=NAME&version=N``), built by the same views.
* ``POST /api/takes/ID/circle`` and ``POST /api/voices/...`` (name, merge, split, accept the screenplay's
  names) change the index through the same functions as `dailies circle` and `dailies speakers`
  (:mod:`indexer.edits`), opening the one writer for that request only: 409 when another process (e.g.
  `dailies index`) holds it, 403 under ``--read-only``. Circling and review notes (``GET /api/notes``,
  ``POST /api/takes/ID/notes``, ``DELETE /api/notes/N``, as `dailies notes`) are review marks, written beside
  the writer (:func:`indexer.edits.marks`): they work while `dailies index` runs.
* ``/api/export/stringout`` and ``/api/export/markers`` send, for a line search (``?q=`` and the search page's
  filters: the hits the page shows), a script line (``?script_line=12A/4``) or a voice (``?voice=MAYA``), the
  files `dailies export stringout|markers` writes for it (:mod:`indexer.export`); ``/api/export/transcript?take=`` and
  ``/api/export/ale`` those of `dailies export transcript|ale`. One file as it is, several as one zip.
* ``/media/ID`` serves a take's playable file (original or proxy, :mod:`.media`) by take id only, with
  HTTP range requests (``?channel=N``: channel N of a sound take alone, e.g. an actor's iso);
  ``/media/ID/thumb?t=SECONDS`` a JPEG of one frame.
* With a token, every request (pages, API, media, assets) needs ``Authorization: Bearer TOKEN`` or the
  cookie that opening ``/?token=TOKEN`` once sets; otherwise 401.
* The index is opened for reading, one connection per worker thread at a time (a small pool); each
  query sees the catalog as it is then, so takes that ``dailies index`` finishes meanwhile appear at once.
* Errors are one sentence (JSON ``{"error": ...}`` for the API, a page otherwise), never a traceback.
"""

from __future__ import annotations

import gc
import hmac
import logging
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

from ..errors import (DailiesError, IndexLockedError, IndexMissingError, IndexReadOnlyError, NotFoundError,
                      NothingToExportError, UsageError)

log = logging.getLogger("dailies.server")

HERE = Path(__file__).resolve().parent
COOKIE = "dailies_token"
PRE_ROLL = 1.0
MAX_STILL = 20 * 2**20
MAX_FORM = 64 * 2**10
LOCKED = "The index is being written by another process (e.g. `dailies index`); try again when it has finished."
READ_ONLY = ("This review room is read-only (`dailies serve --read-only`); circling takes, review notes and naming "
             "voices are off.")


class _Heap:
    """The process's long-lived objects kept out of the garbage collector's full passes.

    The first search loads the text embedding, Chroma's client and the catalog's caches: some 100k objects
    that live as long as the process, and that every full collection walked again (about 65 ms, once every
    15 or so searches on a 100k-line index: 4 ms a search on average, and the slowest searches). After the
    first search they are collected once and frozen (``gc.freeze``); when the pool drops its connections and
    vector clients (the writer changed the index) they are unfrozen, so the dropped ones can be collected,
    and frozen again after the next search."""

    def __init__(self):
        self._lock = threading.Lock()
        self._frozen = False

    def settle(self) -> None:
        if self._frozen:
            return
        with self._lock:
            if not self._frozen:
                gc.collect()
                gc.freeze()
                self._frozen = True

    def thaw(self) -> None:
        with self._lock:
            if self._frozen:
                gc.unfreeze()
                self._frozen = False


HEAP = _Heap()


class IndexPool:
    """Read-only :class:`~indexer.store.Index` connections shared by the server's threads.

    The catalog (SQLite, WAL) shows each query the takes committed so far. The embedded vector store does
    not: a client that has answered a query keeps its vectors in memory. So when the catalog has changed
    (another process, the writer, committed) and ``refresh`` seconds have passed, new readers wait until
    none is in flight, every connection is dropped, the vector clients are refreshed, and readers reopen.
    Reloading costs about a second per 100k lines, hence the default of a minute: a new take's lines are
    found by their words at once, by meaning (semantic candidates) within a minute.
    """

    def __init__(self, path: Path, size: int = 8, refresh: float = 60.0, warm: bool = False):
        self.path = Path(path)
        self.size = size
        self.refresh = refresh
        self.warm = warm
        self.warmed = threading.Event()         # set when a warm-up pass has ended (tests wait on it)
        self._free: list = []
        self._cond = threading.Condition()
        self._active = 0
        self._draining = False
        self._stamp = self._catalog_stamp()
        self._checked = time.monotonic()

    def _catalog_stamp(self) -> tuple:
        out = []
        for name in ("catalog.sqlite", "catalog.sqlite-wal"):
            try:
                st = (self.path / name).stat()
                out.append((st.st_mtime_ns, st.st_size))
            except OSError:
                out.append(None)
        return tuple(out)

    def _stale(self) -> bool:
        now = time.monotonic()
        if now - self._checked < self.refresh:
            return False
        self._checked = now
        stamp = self._catalog_stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        return True

    def _acquire(self):
        from ..store import Index, refresh_vector_clients

        with self._cond:
            if not self._draining and self._stale():
                self._draining = True
            while self._draining and self._active:
                self._cond.wait()
            if self._draining:                              # no reader in flight: start afresh
                for idx in self._free:
                    idx.close()
                self._free.clear()
                refresh_vector_clients()
                HEAP.thaw()                                 # the dropped clients can be collected
                self._draining = False
                self._cond.notify_all()
            while self._active >= self.size:
                self._cond.wait()
            self._active += 1
            idx = self._free.pop() if self._free else None
        if idx is None:
            try:
                idx = Index.open(self.path)
            except BaseException:
                self._release(None)
                raise
        return idx

    def _release(self, idx) -> None:
        with self._cond:
            self._active -= 1
            if idx is not None:
                self._free.append(idx)
            self._cond.notify_all()

    def start_warming(self) -> None:
        """With ``warm``: on a thread of its own, read the commonest words' full-text shares
        (:func:`indexer.search.warm_full_text`: about 4 s of CPU per 100k lines) once, at start. Not again when
        the index changes: every commit of the writer drops them (idf and avgdl change), so while `dailies
        index` writes they would be read again and again for nothing; searches read what they need."""
        if not self.warm:
            return

        def run():
            from ..search import warm_full_text

            try:
                with self.reader() as idx:
                    warm_full_text(idx)
            except Exception as exc:        # searches still work, only slower: say so in the server's log
                log.warning("warming the full-text shares of %s failed: %s", self.path, exc)
            finally:
                self.warmed.set()

        self.warmed.clear()
        threading.Thread(target=run, name="dailies-warm", daemon=True).start()

    @contextmanager
    def reader(self):
        idx = self._acquire()
        ok = False
        try:
            yield idx
            ok = True
        finally:
            if not ok:
                idx.close()
            self._release(idx if ok else None)

    def close(self) -> None:
        with self._cond:
            for idx in self._free:
                idx.close()
            self._free.clear()


def search_slots_default() -> int:
    """Line searches one server process runs at once: one per core it may use. A search is CPU work, mostly
    under Python's GIL; more at once only share the cores, so every one of them finishes late."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:                                  # not Linux
        return max(1, os.cpu_count() or 1)


def create_app(index: str | Path, *, token: str | None = None, read_only: bool = False,
               proxies: bool = True, refresh: float = 60.0, warm: bool = False, searches: int | None = None) -> Any:
    """The ASGI app for an index folder. ``proxies``: make missing browser proxies in a background thread;
    ``refresh``: at most this often (seconds) reopen the index when the writer has changed it; ``warm``: read
    the commonest words' full-text shares in a background thread (`dailies serve` does); ``searches``: line
    searches run at once (default: one per core, :func:`search_slots_default`), the others wait their turn, and
    one whose client has gone by then is not run."""
    import anyio
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles
    from starlette.templating import Jinja2Templates

    from . import media as pmedia
    from .. import views

    pool = IndexPool(Path(index), refresh=refresh, warm=warm)
    pool.start_warming()
    # waiters are served first come, first served; made here, it binds to the server's event loop on first use
    search_slots = anyio.Semaphore(search_slots_default() if searches is None else searches)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals["read_only"] = read_only          # every page's player: no note form when read-only

    # ------------------------------------------------------------------ helpers
    def wants_json(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    def error(request: Request, message: str, status: int) -> Response:
        if wants_json(request):
            return JSONResponse({"error": message}, status_code=status)
        if request.url.path.startswith("/media/") or request.url.path.startswith("/static/"):
            return PlainTextResponse(message, status_code=status)
        return templates.TemplateResponse(request, "error.html", {"message": message, "status": status},
                                          status_code=status)

    def text_param(request: Request, name: str) -> str | None:
        v = request.query_params.get(name)
        return v.strip() or None if v is not None else None

    def num_param(request: Request, name: str, default, kind: Callable = int, lo=None, hi=None):
        raw = request.query_params.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            v = kind(raw)
        except ValueError:
            raise UsageError(f"The parameter {name}={raw!r} is not a number.") from None
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise UsageError(f"The parameter {name}={raw} is out of range ({lo} to {hi}).")
        return v

    def bool_param(request: Request, name: str, default: bool) -> bool:
        raw = request.query_params.get(name)
        if raw is None or raw == "":
            return default
        return raw.lower() not in ("0", "false", "no", "off")

    def media_url(take_id: str) -> str:
        return f"/media/{take_id}"

    def with_media(hits: list[dict]) -> list[dict]:
        return [{**h, "media_url": media_url(h["take_id"])} for h in hits]

    def take_info(idx, row) -> dict:
        clock = row.clock
        p = pmedia.playable(idx.path, row)
        return {"take_id": row["take_id"], "name": row["name"], "clip": row["path"], "scene": row["scene"],
                "take": row["take"], "camera": row["camera"], "rate": row["rate"], "start_tc": clock.start_tc,
                "start_frame": clock.start_frame, "drop_frame": clock.drop_frame, "duration": row["duration"],
                "frames": row["frames"], "status": row["status"], "circled": row.circled,
                "circle_note": row.circle_note, "media_kind": p.kind, "sound_channels": pmedia.sound_channels(row),
                "media_url": media_url(row["take_id"]), "proxy": p.proxy,
                "media_missing": not p.source.is_file(),
                "media_pending": p.proxy and p.source.is_file() and not pmedia.proxy_is_current(p)}

    # ------------------------------------------------------------------ API
    def line_params(request: Request) -> dict:
        """The line search's filters and settings, as `dailies search line` takes them (the search page's)."""
        return dict(scene=text_param(request, "scene"), take=text_param(request, "take"),
                    speaker=text_param(request, "speaker"), limit=num_param(request, "limit", 50, int, 1, 10000),
                    min_match=num_param(request, "min_match", 0.5, float, 0.0, 1.0),
                    span=num_param(request, "span", 2, int, 1, 4), semantic=bool_param(request, "semantic", True),
                    visual=text_param(request, "visual"))

    async def api_search_line(request: Request):
        from starlette.concurrency import run_in_threadpool

        q = text_param(request, "q")
        if not q:
            raise UsageError("Give some words to search for (?q=...).")
        params = line_params(request)

        def search():
            with pool.reader() as idx:
                hits = views.line_hits(idx, q, **params)
            HEAP.settle()
            return with_media(views.hits_json(hits))

        async with search_slots:
            if await request.is_disconnected():      # typed on: the page asked for a newer line meanwhile
                return Response(status_code=499)
            return JSONResponse(await run_in_threadpool(search))

    def api_search_speaker(request: Request):
        from ..search import search_speaker

        name = text_param(request, "name") or text_param(request, "q")
        if not name:
            raise UsageError("Say which voice (?name=MAYA or ?name=V003).")
        with pool.reader() as idx:
            hits = search_speaker(idx, name, scene=text_param(request, "scene"), take=text_param(request, "take"),
                                  limit=num_param(request, "limit", 1000, int, 1, 100000))
        return JSONResponse(with_media(views.hits_json(hits)))

    def api_search_shots(request: Request):
        speaker = text_param(request, "speaker")
        if not speaker:
            raise UsageError("Say whose shots (?speaker=MAYA).")
        with pool.reader() as idx:
            hits = views.speaker_shot_hits(idx, speaker, scene=text_param(request, "scene"),
                                           take=text_param(request, "take"),
                                           limit=num_param(request, "limit", 1000, int, 1, 100000),
                                           visual=text_param(request, "visual"))
        return JSONResponse(with_media(views.hits_json(hits)))

    def api_search_visual(request: Request):
        q = text_param(request, "q")
        if not q:
            raise UsageError("Describe the picture (?q=night exterior).")
        with pool.reader() as idx:
            hits = views.visual_hits(idx, q, tags=request.query_params.getlist("tag"),
                                     scene=text_param(request, "scene"), take=text_param(request, "take"),
                                     limit=num_param(request, "limit", 20, int, 1, 1000))
        return JSONResponse(with_media(views.hits_json(hits)))

    async def api_search_visual_still(request: Request):
        """POST a still (JPEG/PNG body): shots that look like it, as `dailies search visual --image`."""
        import io

        import numpy as np
        from PIL import Image
        from starlette.concurrency import run_in_threadpool

        body = await request.body()
        if not body:
            raise UsageError("Send a still (JPEG or PNG) as the request body.")
        if len(body) > MAX_STILL:
            raise UsageError(f"The still is {len(body) // 2**20} MB; send one under {MAX_STILL // 2**20} MB.")
        try:
            image = np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))
        except Exception:
            raise UsageError("The still could not be read as an image (send a JPEG or PNG).") from None

        def search():
            with pool.reader() as idx:
                return views.hits_json(views.visual_hits(
                    idx, None, image, tags=request.query_params.getlist("tag"), scene=text_param(request, "scene"),
                    take=text_param(request, "take"), limit=num_param(request, "limit", 20, int, 1, 1000)))

        return JSONResponse(with_media(await run_in_threadpool(search)))

    async def api_export(request: Request):
        """Downloads for the edit, the files `dailies export ...` writes: ``/api/export/stringout`` (EDL, FCP 7
        XML, FCPXML or OTIO: each take's best delivery cut back to back with handles) and ``/api/export/markers``
        (Avid, Resolve, Premiere, CSV or OTIO), of ``?q=LINE`` with the search page's filters (the hits the page
        shows; ``only=`` the ones ticked, each by its line ids joined by "+"), ``?script_line=12A/4`` or
        ``?voice=MAYA`` (every line of a voice); ``/api/export/markers?notes=1`` the review notes (``take=`` repeated:
        those takes');
        ``/api/export/transcript?take=TAKE`` (SRT, VTT, CSV, TXT or JSON) and ``/api/export/ale`` (every indexed
        take, or ``?take=`` repeated). Several files (an EDL or ALE per frame rate, Avid markers per take) come as
        one zip."""
        from starlette.concurrency import run_in_threadpool

        from .. import export as ex
        from ..export.hitsets import note_hits, nothing_found, script_line_hits, speaker_hits
        from .downloads import attachment, download_name

        what = request.path_params["what"]
        formats = {"stringout": ex.STRINGOUT_FORMATS, "markers": ex.MARKER_FORMATS, "transcript": ex.TRANSCRIPT_EXT,
                   "ale": ex.ALE_FORMATS}.get(what)
        if formats is None:
            return error(request, f"No export {what!r}: ask for /api/export/stringout, markers, transcript or ale.",
                         404)
        defaults = {"stringout": "edl", "markers": "avid", "transcript": "srt", "ale": "ale"}
        fmt = ex.pick_format(None, text_param(request, "format") or defaults[what], formats,
                             {"stringout": "string-out", "markers": "marker", "transcript": "transcript",
                              "ale": "log"}[what])
        takes = [t.strip() for t in request.query_params.getlist("take") if t.strip()]
        if what == "transcript":
            if len(takes) != 1:
                raise UsageError("Say which take's transcript (?take=CLIP or ?take=TAKE_ID).")

            def build():
                with pool.reader() as idx:
                    return ex.transcript_outputs(idx, takes[0], fmt), []
            stem = "transcript"
        elif what == "ale":
            def build():
                with pool.reader() as idx:
                    return ex.ale_outputs(idx, Path("dailies" + formats[fmt]), takes,
                                          dialogue_words=num_param(request, "dialogue_words", 12, int, 1, 1000),
                                          reel_len=num_param(request, "reel_len", 8, int, 0, 128)), []
            stem = "dailies"
        else:
            q, script_line, voice = (text_param(request, k) for k in ("q", "script_line", "voice"))
            notes = bool_param(request, "notes", False)
            if sum(map(bool, (q, script_line, voice, notes))) != 1:
                raise UsageError("Say what to export: ?q=LINE (a line search, with the search page's filters), "
                                 "?script_line=12A/4, ?voice=MAYA (every line of a voice) or ?notes=1 (the review "
                                 "notes).")
            if notes and what != "markers":
                raise UsageError("The review notes export as markers: /api/export/markers?notes=1.")
            kind, value = ("line", q) if q else ("script", script_line) if script_line else \
                ("speaker", voice) if voice else ("notes", "review notes")
            # each hit by its line ids joined by "+" (a "+" left unescaped in a URL arrives as a space)
            chosen = {k.strip().replace(" ", "+") for v in request.query_params.getlist("only") for k in v.split(",")
                      if k.strip()}
            if chosen and not q:
                raise UsageError("?only= picks among a line search's hits: give ?q= with it.")
            if q:
                params = line_params(request)
            elif script_line:
                params = {"limit": num_param(request, "limit", 100, int, 1, 10000),
                          "script": text_param(request, "script"),
                          "version": num_param(request, "version", None, int, 1)}
            else:
                params = {"limit": num_param(request, "limit", 1000, int, 1, 100000),
                          "scene": text_param(request, "scene"), "take": takes[0] if takes else None}
            options = dict(handles=num_param(request, "handles", 12, int, 0, 10000), rate=text_param(request, "rate"),
                           order=text_param(request, "order") or "rank",
                           all_hits=bool_param(request, "all_hits", bool(chosen)),     # chosen: every one of them
                           reel_len=num_param(request, "reel_len", 8, int, 0, 128), title=text_param(request, "title"))
            stem = "review-notes" if notes else download_name(kind, value)
            out = Path(stem + formats[fmt])

            def build():
                with pool.reader() as idx:
                    if q:
                        hits = views.line_hits(idx, q, **params)
                        if chosen:          # the hits ticked on the page, each by its line ids
                            hits = [h for h in hits if "+".join(h.line_ids) in chosen]
                            if not hits:
                                raise NothingToExportError("Nothing to export: none of the chosen hits is found "
                                                           "by this search any more (the index changed?); "
                                                           "search again.")
                    elif script_line:
                        hits = script_line_hits(idx, script_line, **params)
                    elif notes:             # every note, or those of the takes asked for (?take= repeated)
                        hits = note_hits(idx, [idx.take(t).take_id for t in takes] if takes else None)
                        if not hits:
                            raise NothingToExportError("Nothing to export: no review notes" +
                                                       (" on " + ", ".join(takes) if takes else "") + ".")
                    else:
                        hits = speaker_hits(idx, voice, **params)
                    if not hits:
                        raise nothing_found(kind, value)
                    if what == "stringout":
                        return ex.stringout_outputs(idx, kind, value, hits, fmt, out, **options)
                    return ex.marker_outputs(idx, hits, fmt, out), []

        async with search_slots:
            outputs, notes = await run_in_threadpool(build)
        return attachment(outputs, notes, f"{stem}.zip")

    def api_status(request: Request):
        with pool.reader() as idx:
            return JSONResponse(views.status(idx))

    def api_takes(request: Request):
        with pool.reader() as idx:
            data = views.status(idx)
            rows = {r["take_id"]: r for r in idx.takes()}
            takes = [{**t, **take_info(idx, rows[t["take_id"]])} for t in data["takes"]]
        return JSONResponse(takes)

    def api_take(request: Request):
        take_id = request.path_params["take_id"]
        with pool.reader() as idx:
            row = idx.take_row(take_id)
            if row is None:
                return error(request, f"No take {take_id} in the index.", 404)
            out = take_info(idx, row)
            out["lines"] = views.take_lines(idx, take_id)["lines"]
            out["shots"] = views.take_shots(idx, take_id)["shots"]
            out["channels"] = idx.take_channels(take_id)          # production sound: each channel's role
            out["script"] = views.take_script(idx, take_id)        # None: no screenplay imported
        return JSONResponse(out)

    def version_params(request: Request) -> tuple[str | None, int | None]:
        return text_param(request, "script"), num_param(request, "version", None, int, 1)

    def lined_data(request: Request) -> dict:
        with pool.reader() as idx:
            return views.lined_script(idx, *version_params(request))

    def api_script(request: Request):
        """The lined script: pages (rows at their printed line), takes and the state of each line."""
        return JSONResponse(lined_data(request))

    def coverage_of(request: Request):
        with pool.reader() as idx:
            cov, _ = views.coverage(idx, *version_params(request), scene=text_param(request, "scene"))
        return cov

    def api_coverage(request: Request):
        """What `dailies script coverage --json` prints."""
        return JSONResponse(coverage_of(request).to_json())
    # ------------------------------------------------------------------ writes (the one writer, briefly)
    class Refused(Exception):
        def __init__(self, message: str, status: int):
            super().__init__(message)
            self.message, self.status = message, status

    async def form(request: Request) -> dict:
        """A POST's JSON object body (or an empty one)."""
        body = await request.body()
        if len(body) > MAX_FORM:
            raise UsageError("The request body is too large.")
        if not body.strip():
            return {}
        import json

        try:
            data = json.loads(body)
        except ValueError:
            raise UsageError("The request body is not JSON (send an object, e.g. {\"name\": \"MAYA\"}).") from None
        if not isinstance(data, dict):
            raise UsageError("The request body must be a JSON object.")
        return data

    def field(data: dict, name: str, *, required: bool = False) -> str | None:
        v = data.get(name)
        if v is not None and not isinstance(v, str):
            raise UsageError(f"The field {name!r} must be text.")
        v = v.strip() if v else None
        if required and not v:
            raise UsageError(f"Say the {name} (a JSON field {name!r}).")
        return v or None

    async def write(request: Request, change: Callable[[Any], Any], *, mark: bool = False):
        """Run ``change(writer index)`` with the one writer, opened for this request only; with ``mark``, a
        review mark's change, beside the writer (circling works while `dailies index` runs)."""
        from starlette.concurrency import run_in_threadpool

        from .. import edits

        if read_only:
            return error(request, READ_ONLY, 403)

        def run():
            try:
                with (edits.marks if mark else edits.writer)(pool.path) as idx:
                    return change(idx)
            except IndexLockedError:
                raise Refused(LOCKED, 409) from None

        try:
            return JSONResponse(await run_in_threadpool(run))
        except Refused as exc:
            return error(request, exc.message, exc.status)

    async def api_circle(request: Request):
        """POST {"circled": true|false, "note": "..."}: as `dailies circle TAKE [--note] [--off] --json` (no
        note keeps the one it has, "" clears it)."""
        from .. import edits

        data = await form(request)
        on = data.get("circled", True)
        if not isinstance(on, bool):
            raise UsageError("The field 'circled' must be true or false.")
        note = data.get("note")
        if note is not None and not isinstance(note, str):
            raise UsageError("The field 'note' must be text.")
        take_id = request.path_params["take_id"]
        return await write(request, lambda idx: edits.circle(idx, take_id, on=on, note=note), mark=True)

    def api_notes(request: Request):
        """As `dailies notes list [--take TAKE] --json`."""
        with pool.reader() as idx:
            return JSONResponse(views.notes(idx, text_param(request, "take")))

    async def api_note_add(request: Request):
        """POST {"frame": 678 | "at": "01:01:22;10", "text": "...", "author": "..."}: as `dailies notes add TAKE AT
        TEXT --by AUTHOR --json` (the player sends its frame, counted from the take's first). A note over a stretch
        also has its last frame: "end_frame": 702 with "frame", or "to": "01:01:23;10" with "at" (`--to`)."""
        from .. import edits

        data = await form(request)
        text, author, at, frame = data.get("text"), data.get("author"), data.get("at"), data.get("frame")
        to, end_frame = data.get("to"), data.get("end_frame")
        for name, value in (("text", text), ("author", author), ("at", at), ("to", to)):
            if value is not None and not isinstance(value, str):
                raise UsageError(f"The field '{name}' must be text.")
        for name, value in (("frame", frame), ("end_frame", end_frame)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise UsageError(f"The field '{name}' must be a whole number of frames from the take's first frame.")
        if to is not None and end_frame is not None:
            raise UsageError("Say where the note ends with 'end_frame' or 'to', one of them.")
        if (frame is None) == (at is None):
            raise UsageError("Say where the note goes: 'frame' (from the take's first frame) or 'at' (its source "
                             "timecode or seconds), one of them.")
        take_id = request.path_params["take_id"]
        return await write(request, lambda idx: edits.add_note(idx, take_id, at, text or "", frame=frame,
                                                               author=author, to=to, end_frame=end_frame), mark=True)

    async def api_note_delete(request: Request):
        """DELETE: as `dailies notes delete ID --json`."""
        from .. import edits

        note_id = request.path_params["note_id"]
        return await write(request, lambda idx: edits.delete_note(idx, note_id), mark=True)

    async def api_note_edit(request: Request):
        """PATCH {"text": "..."}: as `dailies notes edit ID TEXT --json`."""
        from .. import edits

        text = (await form(request)).get("text")
        if not isinstance(text, str):
            raise UsageError("Give the note's new text: {\"text\": \"...\"}.")
        note_id = request.path_params["note_id"]
        return await write(request, lambda idx: edits.edit_note(idx, note_id, text), mark=True)

    def api_voices(request: Request):
        with pool.reader() as idx:
            rows = views.voices(idx)
        for v in rows:
            for c in v["clips"]:
                c["media_url"] = media_url(c["take_id"])
        return JSONResponse(rows)

    def api_voice_proposals(request: Request):
        """As `dailies speakers name --from-script --json` (nothing applied)."""
        from .. import edits

        with pool.reader() as idx:
            return JSONResponse(edits.names_from_script(idx, apply=False))

    async def api_voice_name(request: Request):
        """POST {"voice": "V003", "name": "MAYA"}: as `dailies speakers name V003 MAYA`."""
        from .. import edits

        data = await form(request)
        voice, name = field(data, "voice", required=True), field(data, "name", required=True)
        return await write(request, lambda idx: edits.name_voice(idx, voice, name))

    async def api_voice_merge(request: Request):
        """POST {"keep": "V001", "other": "V004"}: as `dailies speakers merge V001 V004`."""
        from .. import edits

        data = await form(request)
        keep, other = field(data, "keep", required=True), field(data, "other", required=True)
        return await write(request, lambda idx: edits.merge_voices(idx, keep, other))

    async def api_voice_split(request: Request):
        """POST {"voice": "V001", "take": "TAKE_ID", "label": "SPEAKER_01"?, "name": "..."?}:
        as `dailies speakers split V001 TAKE [--label] [--name]`."""
        from .. import edits

        data = await form(request)
        voice, take = field(data, "voice", required=True), field(data, "take", required=True)
        label, name = field(data, "label"), field(data, "name")
        return await write(request, lambda idx: edits.split_voice(idx, voice, take, label, name))

    async def api_voice_accept(request: Request):
        """POST: as `dailies speakers name --from-script --yes --json`."""
        from .. import edits

        return await write(request, lambda idx: edits.names_from_script(idx, apply=True))

    # ------------------------------------------------------------------ media
    def _take_row(take_id: str):
        with pool.reader() as idx:
            return idx.take_row(take_id)

    def media(request: Request):
        take_id = request.path_params["take_id"]
        row = _take_row(take_id)
        if row is None:
            return error(request, f"No take {take_id} in the index.", 404)
        channel = request.query_params.get("channel")
        if channel:                 # one channel of a sound take alone (an actor's iso), as a mono proxy
            try:
                p = pmedia.channel_playable(pool.path, row, int(channel) if channel.isdigit() else channel)
            except DailiesError as exc:
                return error(request, exc.message, 400)
        else:
            p = pmedia.playable(pool.path, row)
        if not p.source.is_file():
            return error(request, f"The media of {row['name']} is missing ({row['path']} moved or is offline).", 404)
        if p.proxy and not pmedia.proxy_is_current(p):
            if read_only:
                why = (f"{row['name']} has no browser proxy yet (run `dailies proxies`)." if p.channel is None
                       else f"{row['name']}: channel {p.channel} alone has not been made for the browser yet, and a "
                            "read-only review room makes none.")
                return error(request, why, 404)
            try:
                pmedia.ensure_proxy(p, row)
            except DailiesError as exc:
                return error(request, exc.message, 500)
        return FileResponse(p.path, media_type=p.media_type)

    def thumb(request: Request):
        take_id = request.path_params["take_id"]
        row = _take_row(take_id)
        if row is None:
            return error(request, f"No take {take_id} in the index.", 404)
        t = num_param(request, "t", 0.0, float, 0.0)
        w = num_param(request, "w", 320, int, 16, 1920)
        data = pmedia.thumbnail(pool.path, row, t, width=w, cache=not read_only)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=86400"})

    # ------------------------------------------------------------------ pages
    def page_search(request: Request):
        return templates.TemplateResponse(request, "search.html", {"pre_roll": PRE_ROLL})

    def page_notes(request: Request):
        return templates.TemplateResponse(request, "notes.html", {"pre_roll": PRE_ROLL})

    def page_voices(request: Request):
        return templates.TemplateResponse(request, "voices.html", {"read_only": read_only})

    def page_take(request: Request):
        return templates.TemplateResponse(request, "take.html", {"take_id": request.path_params["take_id"],
                                                                  "pre_roll": PRE_ROLL, "read_only": read_only})

    def page_script(request: Request):
        from .lined import lookups

        data = lined_data(request)
        return templates.TemplateResponse(request, "script.html", {"data": data, "pre_roll": PRE_ROLL,
                                                                    **lookups(data)})

    def page_script_print(request: Request):
        from starlette.responses import HTMLResponse

        from .lined import print_html

        return HTMLResponse(print_html(lined_data(request)))

    def page_coverage(request: Request):
        return templates.TemplateResponse(request, "coverage.html", {"cov": coverage_of(request), "pre_roll": PRE_ROLL})

    # ------------------------------------------------------------------ token, errors
    class TokenMiddleware:
        def __init__(self, app):
            self.app = app

        async def __call__(self, scope, receive, send):
            if scope["type"] != "http" or not token:
                return await self.app(scope, receive, send)
            request = Request(scope)
            given = request.query_params.get("token")
            if given is not None and request.method == "GET" and not wants_json(request):
                if hmac.compare_digest(given.encode(), token.encode()):
                    params = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
                    from urllib.parse import urlencode

                    url = request.url.path + ("?" + urlencode(params) if params else "")
                    resp = RedirectResponse(url, status_code=303)
                    resp.set_cookie(COOKIE, token, httponly=True, samesite="strict")
                    return await resp(scope, receive, send)
            auth = request.headers.get("authorization", "")
            candidates = [request.cookies.get(COOKIE, "")]
            if auth.lower().startswith("bearer "):
                candidates.append(auth[7:].strip())
            if given is not None:
                candidates.append(given)
            if any(c and hmac.compare_digest(c.encode(), token.encode()) for c in candidates):
                return await self.app(scope, receive, send)
            msg = "This review room needs its token: open the link `dailies serve` printed, or send " \
                  "Authorization: Bearer TOKEN."
            resp = error(request, msg, 401)
            return await resp(scope, receive, send)

    async def on_dailies_error(request: Request, exc: DailiesError):
        status = 404 if isinstance(exc, (NothingToExportError, NotFoundError, IndexMissingError)) else \
            403 if isinstance(exc, IndexReadOnlyError) else 400
        return error(request, exc.message, status)

    async def on_error(request: Request, exc: Exception):
        log.exception("request %s failed", request.url.path)
        return error(request, f"Unexpected error ({type(exc).__name__}); the server log has the details.", 500)

    async def on_http(request: Request, exc):
        return error(request, exc.detail if isinstance(exc.detail, str) else "Not found.", exc.status_code)

    routes = [
        Route("/", page_search),
        Route("/take/{take_id}", page_take),
        Route("/script", page_script),
        Route("/script/print", page_script_print),
        Route("/coverage", page_coverage),
        Route("/api/script", api_script),
        Route("/api/coverage", api_coverage),
        Route("/voices", page_voices),
        Route("/notes", page_notes),
        Route("/api/search/line", api_search_line),
        Route("/api/search/speaker", api_search_speaker),
        Route("/api/search/shots", api_search_shots),
        Route("/api/search/visual", api_search_visual, methods=["GET"]),
        Route("/api/search/visual", api_search_visual_still, methods=["POST"]),
        Route("/api/export/{what}", api_export),
        Route("/api/status", api_status),
        Route("/api/takes", api_takes),
        Route("/api/takes/{take_id}", api_take),
        Route("/api/takes/{take_id}/circle", api_circle, methods=["POST"]),
        Route("/api/notes", api_notes),
        Route("/api/takes/{take_id}/notes", api_note_add, methods=["POST"]),
        Route("/api/notes/{note_id}", api_note_delete, methods=["DELETE"]),
        Route("/api/notes/{note_id}", api_note_edit, methods=["PATCH"]),
        Route("/api/voices", api_voices),
        Route("/api/voices/proposals", api_voice_proposals),
        Route("/api/voices/name", api_voice_name, methods=["POST"]),
        Route("/api/voices/merge", api_voice_merge, methods=["POST"]),
        Route("/api/voices/split", api_voice_split, methods=["POST"]),
        Route("/api/voices/accept-proposals", api_voice_accept, methods=["POST"]),
        Route("/media/{take_id}", media),
        Route("/media/{take_id}/thumb", thumb),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    from starlette.exceptions import HTTPException

    app = Starlette(routes=routes, middleware=[Middleware(TokenMiddleware)],
                    exception_handlers={DailiesError: on_dailies_error, HTTPException: on_http, Exception: on_error})
    app.state.pool = pool
    app.state.read_only = read_only
    if proxies and not read_only:
        app.state.proxy_thread = start_proxy_thread(pool.path)
    return app


SERVE_CONFIG = "DAILIES_SERVE_CONFIG"


def app_from_env() -> Any:
    """The app of one process of `dailies serve --workers N` (uvicorn imports it by name in each process):
    the index, token and read-only flag come from the ``DAILIES_SERVE_CONFIG`` environment variable, set by
    the parent. Proxies are made by the parent alone (one background pass, not one per process)."""
    import json
    import os

    cfg = json.loads(os.environ[SERVE_CONFIG])
    return create_app(cfg["index"], token=cfg.get("token"), read_only=bool(cfg.get("read_only")), proxies=False,
                      warm=True)


def make_proxies(index: str | Path, report: Callable[[str], None] | None = None) -> dict[str, int]:
    """Make every missing or outdated browser proxy of an index (``dailies proxies``); one bad take is
    reported and skipped. Returns counts: made, current, failed."""
    from . import media as pmedia
    from ..store import Index

    counts = {"made": 0, "current": 0, "failed": 0, "playable": 0}
    with Index.open(index) as idx:
        rows = idx.takes("indexed")
    for row in rows:
        p = pmedia.playable(index, row)
        if not p.proxy:
            counts["playable"] += 1
            continue
        try:
            made = pmedia.ensure_proxy(p, row)
            counts["made" if made else "current"] += 1
            if made and report:
                report(f"proxy made for {row['name']}: {p.path}")
        except DailiesError as exc:
            counts["failed"] += 1
            if report:
                report(exc.message)
    return counts


def start_proxy_thread(index: str | Path) -> threading.Thread:
    def run():
        try:
            make_proxies(index, lambda m: log.info("%s", m))
        except Exception as exc:  # the server goes on; media requests make a missing proxy on demand
            log.warning("background proxies stopped: %s", exc)

    t = threading.Thread(target=run, name="dailies-proxies", daemon=True)
    t.start()
    return t
