"""The one jinja2 environment of the harness: summaries, the selector index, agent prompts, the web report.

Markdown and plain-text templates (`*.md.j2`, ...) are not escaped. HTML templates (`*.html.j2`) are
autoescaped: every value is escaped unless it is `markupsafe.Markup` made by a library that escapes
(markdown-it, pygments), so no template or caller escapes by hand. A missing value is
an error (StrictUndefined), not an empty string. Block tags leave no blank lines (`trim_blocks`,
`lstrip_blocks`) and a template's final newline is kept. The filter `fenced` puts text in a code fence
that the text cannot close early.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import jinja2

TEMPLATES_DIR = Path(__file__).parent / "templates"
HTML_SUFFIXES = (".html.j2", ".svg.j2")
_BACKTICK_RUN = re.compile(r"`+")


def autoescaped(name: str | None) -> bool:
    """Whether the template `name` renders HTML (and so is autoescaped)."""
    return name is not None and name.endswith(HTML_SUFFIXES)


def fenced(text: str, lang: str = "") -> str:
    """`text` in a code fence longer than any backtick run inside it, so the fence cannot end early."""
    longest = max((len(m) for m in _BACKTICK_RUN.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text}\n{fence}"


@lru_cache(maxsize=8)
def environment(folder: str) -> jinja2.Environment:
    """The environment loading templates from `folder` (one per folder, cached)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=autoescaped,
    )
    env.filters["fenced"] = fenced
    return env
