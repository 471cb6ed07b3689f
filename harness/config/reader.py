"""The YAML reader of harness.yaml: type checks that name the key path and the file in every error, unknown
keys refused with a "did you mean", duplicate keys refused."""
from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from pathlib import PurePosixPath
from typing import Any

import yaml

from harness.errors import ConfigError


class Reader:
    """Type checks that name the key path and the file in every error."""

    def __init__(self, source: str) -> None:
        self.source = source

    def type_error(self, key: str, expected: str, got: Any) -> None:
        raise ConfigError(
            f"{self.source}: `{key}`: expected {expected}, got {got!r} ({type(got).__name__})"
        )

    def mapping(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.type_error(key or "<top level>", "a mapping of keys to values", value)
        return value

    def keys(self, m: Mapping[str, Any], prefix: str, allowed: tuple[str, ...]) -> None:
        for k in m:
            if k in allowed:
                continue
            path = f"{prefix}.{k}" if prefix else str(k)
            close = difflib.get_close_matches(str(k), allowed, n=1, cutoff=0.6)
            hint = f"; did you mean `{prefix + '.' if prefix else ''}{close[0]}`?" if close else ""
            raise ConfigError(
                f"{self.source}: unknown key `{path}`{hint}\n"
                f"Allowed keys {'under `' + prefix + '`' if prefix else 'at the top level'}: "
                f"{', '.join(allowed)}"
            )

    def section(self, value: Any, key: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        m = self.mapping({} if value is None else value, key)
        self.keys(m, key, allowed)
        return m

    def optional(self, value: Any, key: str, parse: Callable[[Any, str], Any]) -> Any:
        return None if value is None else parse(value, key)

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            self.type_error(key, "true or false", value)
        return value

    def integer(self, value: Any, key: str, minimum: int = 1) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.type_error(key, f"an integer >= {minimum}", value)
        if value < minimum:
            raise ConfigError(f"{self.source}: `{key}`: expected an integer >= {minimum}, got {value!r}")
        return value

    def nonempty_str(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.type_error(key, "a non-empty string", value)
        return value

    def str_list(self, value: Any, key: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            self.type_error(key, "a list of strings", value)
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.type_error(f"{key}[{i}]", "a string", item)
        return tuple(value)

    def argv(self, value: Any, key: str) -> tuple[str, ...]:
        argv = self.str_list(value, key)
        if not argv or not argv[0].strip():
            self.type_error(key, "a non-empty argv list, e.g. [ruff, check, .]", value)
        return argv

    def str_map(self, value: Any, key: str) -> dict[str, str]:
        m = self.mapping(value, key)
        out: dict[str, str] = {}
        for k, v in m.items():
            if not isinstance(k, str) or not k:
                self.type_error(f"{key}", "variable names as keys", k)
            # YAML turns `1` and `true` into int/bool; environment values must be strings to be unambiguous.
            if not isinstance(v, str):
                self.type_error(f"{key}.{k}", "a string (quote numbers and booleans)", v)
            out[k] = v
        return out

    def rel_path(self, value: Any, key: str) -> str:
        text = self.nonempty_str(value, key)
        p = PurePosixPath(text)
        if p.is_absolute() or "\\" in text or ".." in p.parts:
            raise ConfigError(
                f"{self.source}: `{key}`: {text!r} must be a path relative to the repository root, "
                f"without `..` or a leading `/` (e.g. docs/fix_plan.md)"
            )
        return p.as_posix()


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys: YAML would silently keep only the last one."""


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)
