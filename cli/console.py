"""The one way the CLI makes a rich console (rich is imported on first use: start-up stays small)."""

from __future__ import annotations


def console(stderr: bool = False):
    """A rich console on stdout or stderr. Written to a pipe or a log (not a terminal), messages are not
    wrapped at rich's 80-column default: a path or a count is never cut across lines for a script or a
    log reader (tables still render at that width)."""
    from rich.console import Console

    out = Console(stderr=stderr, highlight=False)
    if not out.is_terminal:
        out.soft_wrap = True
    return out
