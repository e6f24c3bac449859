"""`dailies serve` (the review room in the browser) and `dailies proxies` (browser-playable copies)."""

from __future__ import annotations

import ipaddress
import secrets
import socket
import sys
from pathlib import Path
from typing import Optional

import typer

from indexer.errors import DailiesError

LOOPBACK_NAMES = {"localhost", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve_cmd(
    index: Optional[Path] = typer.Option(None, "--index", "-i", envvar="DAILIES_INDEX", show_envvar=True,
                                         help="Index folder [default: ./dailies-index]."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (anything but localhost needs a "
                                                          "token)."),
    port: int = typer.Option(8750, "--port", min=0, max=65535, help="Port to listen on."),
    token: Optional[str] = typer.Option(None, "--token", envvar="DAILIES_TOKEN",
                                        help="Require this token on every request (generated and printed when "
                                             "binding anything but localhost)."),
    read_only: bool = typer.Option(False, "--read-only", help="Write nothing into the index folder (no proxies, "
                                                               "no cached thumbnails)."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, max=64,
                                help="Server processes answering requests (a search holds one core: give a team "
                                     "about one per core left over from indexing)."),
) -> None:
    """The review room: search and play every take of a line in the browser (pages, JSON API, media)."""
    import uvicorn

    from indexer.config import index_path
    from indexer.server import create_app
    from indexer.store import Index

    target = index_path(index)
    Index.open(target).close()                     # a clear sentence now if there is no index there
    if not is_loopback(host) and not token:
        token = secrets.token_urlsafe(18)
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise DailiesError(f"Cannot listen on {host}:{port} ({exc.strerror}); choose another --port.") from None
    shown = "localhost" if is_loopback(host) else (socket.gethostname() if host in ("0.0.0.0", "::") else host)
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    # Plain print: the link must stay on one line whatever the terminal's width (rich would wrap it).
    print(f"Review room for {target}: open {url}" + ("  (the link sets the token once per browser)" if token
                                                     else ""), file=sys.stderr, flush=True)
    if workers == 1:
        uvicorn.run(create_app(target, token=token, read_only=read_only, warm=True), host=host, port=port,
                    log_level="warning", access_log=False)
        return
    import json
    import os

    from indexer.server import SERVE_CONFIG, start_proxy_thread

    os.environ[SERVE_CONFIG] = json.dumps({"index": str(target), "token": token, "read_only": read_only})
    if not read_only:
        start_proxy_thread(target)
    uvicorn.run("indexer.server:app_from_env", factory=True, workers=workers, host=host, port=port,
                log_level="warning", access_log=False)


def proxies_cmd(
    index: Optional[Path] = typer.Option(None, "--index", "-i", envvar="DAILIES_INDEX", show_envvar=True,
                                         help="Index folder [default: ./dailies-index]."),
) -> None:
    """Make browser-playable proxies (H.264/AAC) of takes a browser cannot play (ProRes, DNx, MXF ...);
    reused while the source is unchanged. `dailies serve` runs this in the background."""
    from indexer.config import index_path
    from indexer.server import make_proxies

    from cli.console import console

    err = console(stderr=True)
    target = index_path(index)
    counts = make_proxies(target, err.print)
    err.print(f"Proxies in {target}: {counts['made']} made, {counts['current']} already current, "
              f"{counts['playable']} takes play as they are, {counts['failed']} failed.")
    if counts["failed"]:
        raise typer.Exit(1)
