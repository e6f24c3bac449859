"""The one way the CLI makes a rich console (rich is imported on first use: start-up stays small). Output fits
the terminal, or ``COLUMNS``, or rich's 80 columns on a pipe (tests/test_trust_tables.py holds it to that)."""

from __future__ import annotations


def console(stderr: bool = False):
    """A rich console on stdout or stderr."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)
