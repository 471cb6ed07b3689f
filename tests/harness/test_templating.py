from __future__ import annotations

from pathlib import Path

from harness.templating import autoescaped, environment


def test_html_templates_are_autoescaped_and_markdown_ones_are_not(tmp_path: Path) -> None:
    (tmp_path / "page.html.j2").write_text("<p>{{ x }}</p>")
    (tmp_path / "note.md.j2").write_text("{{ x }}")
    env = environment(str(tmp_path))
    assert env.get_template("page.html.j2").render(x="<script>") == "<p>&lt;script&gt;</p>"
    assert env.get_template("note.md.j2").render(x="<b>") == "<b>"
    assert autoescaped("report/index.html.j2") and autoescaped("x.svg.j2")
    assert not autoescaped("summary.md.j2") and not autoescaped(None)
