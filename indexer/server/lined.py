"""The lined script's HTML: the page sheets the review room shows at ``/script`` and the self-contained,
print-ready document (``/script/print``, `dailies script lined -o FILE`), from one template macro."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def lookups(data: dict) -> dict:
    """What the templates look up: takes by id, and each take's line entry by ``take_id|line_id``."""
    takes = {t["take_id"]: t for t in data["takes"]}
    entry = {f"{t['take_id']}|{ln['line_id']}": ln for t in data["takes"] for ln in t["lines"]}
    return {"takes_by_id": takes, "entry": entry}


def print_html(data: dict) -> str:
    """The lined pages as one self-contained HTML file (CSS inline, no script): US Letter, one sheet a
    printed page (``@page``, ``break-after: page``)."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(str(HERE / "templates")), autoescape=select_autoescape(["html"]))
    css = (HERE / "static" / "lined.css").read_text(encoding="utf-8")
    return env.get_template("lined_print.html").render(data=data, css=css, **lookups(data))
