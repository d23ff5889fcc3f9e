"""YAML with line numbers, so a broken story pack is reported as `file line N, field 'x': ...`.

Every mapping loaded here carries two extra keys: `__line__` (where the mapping starts) and
`__lines__` ({field: line}). `where(path, mapping, field)` formats the location for an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mio.core.errors import ConfigError


class _LineLoader(yaml.SafeLoader):
    pass


def _mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    loader.flatten_mapping(node)
    out: dict[str, Any] = {}
    lines: dict[str, int] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        out[key] = loader.construct_object(value_node, deep=True)
        lines[str(key)] = key_node.start_mark.line + 1
    out["__line__"] = node.start_mark.line + 1
    out["__lines__"] = lines
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load(path: Path) -> Any:
    """Parse a YAML file; a syntax error names the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from e
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{at}: invalid YAML ({getattr(e, 'problem', None) or e})") from e


def where(path: Path, mapping: dict | None, field: str | None = None) -> str:
    """`file line N, field 'x'` for an error message."""
    if not isinstance(mapping, dict):
        return str(path)
    line = (mapping.get("__lines__") or {}).get(field) if field else None
    line = line or mapping.get("__line__")
    loc = f"{path} line {line}" if line else str(path)
    return f"{loc}, field {field!r}" if field else loc


def strip(value: Any) -> Any:
    """The plain data without the line bookkeeping."""
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if k not in ("__line__", "__lines__")}
    if isinstance(value, list):
        return [strip(v) for v in value]
    return value
