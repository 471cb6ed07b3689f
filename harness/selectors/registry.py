"""The selector registry: every selector the ledger names plus the extra ones in harness.yaml.

A selector string appears once however many items name it; each `Membership` records one place that
names it (RED or Regression of an item, or an `selectors.extra` entry). Group tags are the kinds
(`red`, `regression`, `extra`), the initiatives of the items that name it, and the extra entry's own
groups; `--group G` selects by any of them, `--item ITEM` by item id.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.config import Config, ExtraSelector
from harness.durability.evidence import render_template
from harness.errors import SelectorError
from harness.ledger import Ledger, load_ledger
from harness.pytest_run.runner import Selector, parse_selector

INDEX_PATH = "docs/TEST_SUITE_INDEX.md"
INDEX_TEMPLATE = "TEST_SUITE_INDEX.md.j2"
KINDS = ("red", "regression", "extra")
_FIELD_OF_KIND = {"red": "RED", "regression": "Regression"}


@dataclass(frozen=True)
class Membership:
    """One place that names a selector: `kind` is red, regression or extra.

    Ledger memberships carry the item (id, title, initiative); extra ones their name and groups.
    """

    kind: str
    item_id: str | None = None
    item_title: str | None = None
    initiative: str | None = None
    name: str | None = None
    groups: tuple[str, ...] = ()

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(t for t in (self.kind, self.initiative, *self.groups) if t)

    def describe(self) -> str:
        if self.kind == "extra":
            return f"extra{' ' + repr(self.name) if self.name else ''}"
        return f"{_FIELD_OF_KIND[self.kind]} {self.item_id}"


@dataclass(frozen=True)
class RegistryEntry:
    """One distinct selector string and everything that names it, in the order first named."""

    selector: Selector
    memberships: tuple[Membership, ...]

    @property
    def raw(self) -> str:
        return self.selector.raw

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(k for k in KINDS if any(m.kind == k for m in self.memberships))

    @property
    def item_ids(self) -> tuple[str, ...]:
        return _unique(m.item_id for m in self.memberships if m.item_id)

    @property
    def initiatives(self) -> tuple[str, ...]:
        return _unique(m.initiative for m in self.memberships if m.initiative)

    @property
    def names(self) -> tuple[str, ...]:
        return _unique(m.name for m in self.memberships if m.name)

    @property
    def groups(self) -> tuple[str, ...]:
        """Every tag `--group` matches: kinds, initiatives, extra groups; sorted, no repeats."""
        return tuple(sorted({t for m in self.memberships for t in m.tags}))


@dataclass(frozen=True)
class Registry:
    entries: tuple[RegistryEntry, ...]

    def __len__(self) -> int:
        return len(self.entries)

    def raws(self) -> tuple[str, ...]:
        return tuple(e.raw for e in self.entries)

    def all_groups(self) -> tuple[str, ...]:
        return tuple(sorted({g for e in self.entries for g in e.groups}))

    def select(self, *, group: str | None = None, item: str | None = None) -> tuple[RegistryEntry, ...]:
        """Entries named by `item` within `group` (each optional; both must hold for one membership, so
        `--group regression --item X` is X's Regression selectors). An unknown group or item is an error."""
        if group is not None and group not in self.all_groups():
            known = ", ".join(self.all_groups()) or "none (the registry is empty)"
            raise SelectorError(f"no selector is in group {group!r}; groups: {known}")
        if item is not None:
            ids = {i for e in self.entries for i in e.item_ids}
            if item not in ids:
                raise SelectorError(
                    f"no selector belongs to item {item!r}; items that name selectors: "
                    f"{', '.join(sorted(ids)) or 'none'} (`harness selectors list` shows them)"
                )
        def wanted(m: Membership) -> bool:
            return (group is None or group in m.tags) and (item is None or m.item_id == item)

        return tuple(e for e in self.entries if any(wanted(m) for m in e.memberships))


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def build_registry(ledger: Ledger | None, extra: Sequence[ExtraSelector] = ()) -> Registry:
    """Ledger items in file order (RED, then Regression), then extras; identical strings merged."""
    found: dict[str, list[Membership]] = {}
    parsed: dict[str, Selector] = {}

    def add(raw: str, membership: Membership, where: str) -> None:
        key = raw.strip()
        if key not in parsed:
            try:
                parsed[key] = parse_selector(key)
            except SelectorError as exc:
                raise SelectorError(f"{where}: {exc}") from None
        found.setdefault(key, []).append(membership)

    for item in ledger.items if ledger is not None else ():
        for kind, field in _FIELD_OF_KIND.items():
            # Values as written, empties included, so they line up with their line numbers.
            for raw, line in zip(item.fields.get(field, ()), item.field_lines.get(field, ())):
                if raw:
                    add(raw, Membership(kind, item.id, item.title, item.initiative),
                        f"{ledger.path}:{line}: {field} of item {item.id}")
    for index, entry in enumerate(extra):
        add(entry.selector, Membership("extra", name=entry.name, groups=tuple(entry.groups)),
            f"harness.yaml: selectors.extra[{index}]")
    return Registry(tuple(RegistryEntry(parsed[raw], tuple(ms)) for raw, ms in found.items()))


def load_registry(root: Path, config: Config) -> Registry:
    """The registry of the repository at `root`: its ledger and its harness.yaml extras."""
    return build_registry(load_ledger(Path(root) / config.ledger), config.selectors.extra)


def render_index(registry: Registry, *, ledger_path: str) -> str:
    """docs/TEST_SUITE_INDEX.md text: a pure function of the registry (no times, no results)."""
    by_initiative: dict[str, dict[str, dict]] = {}
    for entry in registry.entries:
        for m in entry.memberships:
            if m.kind == "extra":
                continue
            items = by_initiative.setdefault(m.initiative or "", {})
            row = items.setdefault(m.item_id or "", {"id": m.item_id, "title": m.item_title,
                                                     "red": [], "regression": []})
            row[m.kind].append(entry.raw)
    initiatives = [{"name": name, "rows": list(items.values())}
                   for name, items in sorted(by_initiative.items())]
    rows = [{"raw": e.raw, "named_by": ", ".join(m.describe() for m in e.memberships),
             "names": ", ".join(e.names), "groups": ", ".join(e.groups), "extra": "extra" in e.kinds}
            for e in registry.entries]
    groups: dict[str, list[str]] = {}
    for entry in registry.entries:
        for g in entry.groups:
            groups.setdefault(g, []).append(entry.raw)
    return render_template(
        INDEX_TEMPLATE,
        entries=rows,
        initiatives=initiatives,
        groups=sorted(groups.items()),
        ledger_path=ledger_path,
    )
