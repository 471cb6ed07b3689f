"""Spec sections and findings entries, read as a Markdown reader sees them (markdown-it-py)."""
from __future__ import annotations

from harness.agent.markdown_sections import github_slug, headings, markdown_section, relevant_findings

FINDINGS = """\
# Findings

Intro paragraph about DATA-1 and other things.

Unrelated paragraph.

## Data

| id | finding |
|---|---|
| DATA-1 | the bridge reads diff3d only |
| DATA-2 | compressed members are extracted |

- DATA-1: memmap offsets are read from the local header
  (continued on a second line)
- TRAIN-3: something else
  - a nested DATA-1 mention stays inside its parent item

```text
# DATA-1 inside a fence is not a heading
```

## DATA-1 its own section

Everything here belongs to the section.

### Sub-section

Also kept.

## Other

Setext DATA-9
-------------

Body of the setext heading.
"""


def matcher(word: str):
    return lambda text: word in text


def test_github_slugs_and_sections() -> None:
    assert github_slug("Keys and shapes") == "keys-and-shapes"
    assert github_slug("`np.load` & [mmap](http://x) (v2)!") == "npload--mmap-v2"
    text = "# A\n## Setup\none\n```\n## not a heading\n```\n## Setup\ntwo\n# B\n"
    assert markdown_section(text, "setup") == "## Setup\none\n```\n## not a heading\n```"
    assert markdown_section(text, "setup-1") == "## Setup\ntwo"
    assert markdown_section(text, "a").endswith("two") and markdown_section(text, "nope") is None


def test_headings_are_the_top_level_ones_setext_included_fences_and_list_items_not() -> None:
    text = FINDINGS + "\n- item\n\n  # not a heading either\n"
    assert [(h.level, h.title) for h in headings(text)] == [
        (1, "Findings"), (2, "Data"), (2, "DATA-1 its own section"), (3, "Sub-section"), (2, "Other"),
        (2, "Setext DATA-9")]


def test_findings_entries_are_rows_with_their_header_items_and_paragraphs_under_their_heading() -> None:
    entries = relevant_findings(FINDINGS, matcher("DATA-1"))
    assert entries[0] == "# Findings\n\nIntro paragraph about DATA-1 and other things."
    assert entries[1] == (
        "## Data\n\n| id | finding |\n|---|---|\n| DATA-1 | the bridge reads diff3d only |\n\n"
        "- DATA-1: memmap offsets are read from the local header\n  (continued on a second line)\n\n"
        "- TRAIN-3: something else\n  - a nested DATA-1 mention stays inside its parent item\n\n"
        "```text\n# DATA-1 inside a fence is not a heading\n```")
    assert entries[2] == ("## DATA-1 its own section\n\nEverything here belongs to the section.\n\n"
                          "### Sub-section\n\nAlso kept.")
    assert len(entries) == 3


def test_a_matching_setext_heading_brings_its_section() -> None:
    assert relevant_findings(FINDINGS, matcher("DATA-9")) == [
        "Setext DATA-9\n-------------\n\nBody of the setext heading."]
    assert relevant_findings(FINDINGS, matcher("NOTHING")) == []
