"""Options every command shares (a typer Option default is a plain value: one of each serves every command)."""

from __future__ import annotations

import typer

IndexOpt = typer.Option(None, "--index", "-i", envvar="DAILIES_INDEX", show_envvar=True,
                        help="Index folder [default: ./dailies-index].")
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON to stdout.")
