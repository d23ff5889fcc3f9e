"""YAML with line numbers, so a broken story pack is reported as `file line N, field 'x': ...`.

Every mapping loaded here carries two extra keys: `__line__` (where the mapping starts) and
`__lines__` ({field: line}). `where(path, mapping, field)` formats the location for an error, and
`validate(Model, path, mapping)` checks a mapping against a pydantic model (the field types below:
`Text`, `OptionalText`, `TextList`, `Mapping`) with the first problem named the same way.

A story pack is downloaded data, so the loader is bounded: no aliases (`*name`: a few lines of
nested aliases expand to billions of nodes, the "billion laughs"), at most `MAX_NODES` nodes,
`MAX_DEPTH` levels of nesting (the composer recurses per level) and `MAX_BYTES` per file. Each
limit is a one-line error naming the file and line, raised before anything large is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ValidationError

from mio.core.errors import ConfigError

MAX_BYTES = 4 << 20  # per file; the shipped 20,000 Leagues pack is ~130 kB in all
MAX_NODES = 50_000  # scalars + sequences + mappings per file (the largest shipped file has ~2,000);
# PyYAML composes ~60k nodes a second here, so a file at the cap fails in about a second
MAX_DEPTH = 64  # nesting levels; packs use about 5


class YAMLLimit(yaml.composer.ComposerError):
    """A YAML document that breaks one of the loader's limits (aliases, size, depth)."""


class BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases and caps nodes and depth while the node tree is composed
    (before any Python object exists), so a hostile file fails in milliseconds."""

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self._nodes = 0
        self._depth = 0

    def compose_node(self, parent, index):  # noqa: ANN001 - PyYAML's signature
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise YAMLLimit(None, None, f"alias *{event.anchor} is not allowed (write the value out in full)",
                            event.start_mark)
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise YAMLLimit(None, None, f"more than {MAX_NODES} YAML nodes", self.peek_event().start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise YAMLLimit(None, None, f"nested more than {MAX_DEPTH} levels deep", self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _LineLoader(BoundedLoader):
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


def _read(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ConfigError(f"{path}: {size} bytes; a YAML file here may have at most {MAX_BYTES}")
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror or e})") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start})") from None


def _parse(text: str, source: Path | str, loader: type[yaml.SafeLoader]) -> Any:
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" line {mark.line + 1}" if mark else ""
        if isinstance(e, YAMLLimit):
            raise ConfigError(f"{source}{at}: refused: {e.problem}") from None
        raise ConfigError(f"{source}{at}: invalid YAML ({getattr(e, 'problem', None) or e})") from None


def load(path: Path) -> Any:
    """Parse a YAML file with line bookkeeping; a syntax error or a broken limit names the file and line."""
    return _parse(_read(path), path, _LineLoader)


def load_plain(path: Path) -> Any:
    """Parse a YAML file (config files, any YAML the user hands over) under the same limits, without
    the line bookkeeping."""
    return _parse(_read(path), path, BoundedLoader)


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


# --- checking loaded mappings ------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)


def _text(v: Any) -> str:
    if v is None or v == "":
        raise ValueError("missing required field")
    if isinstance(v, bool) or not isinstance(v, str | int | float):
        raise ValueError(f"must be text, got {type(v).__name__}")
    return str(v).strip()


def _optional_text(v: Any) -> str:
    return "" if v is None or v == "" else _text(v)


def _text_list(v: Any) -> tuple[str, ...]:
    v = [v] if isinstance(v, str) else (v or [])
    if not isinstance(v, list) or not all(isinstance(x, str | int | float) and not isinstance(x, bool) for x in v):
        raise ValueError("must be a list of text")
    return tuple(str(x) for x in v)


def _mapping(v: Any) -> dict:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise ValueError("must be a mapping")
    return strip(v)


Text = Annotated[str, BeforeValidator(_text)]  # a scalar as text (a number is taken as its text), not empty
OptionalText = Annotated[str, BeforeValidator(_optional_text)]  # the same, or "" when left out
TextList = Annotated[tuple[str, ...], BeforeValidator(_text_list)]  # a list of scalars (or one), as text
Mapping = Annotated[dict, BeforeValidator(_mapping)]  # a mapping, kept as plain data


def validate(model: type[M], path: Path, mapping: dict) -> M:
    """`mapping` (as `load` returns it) checked and converted by `model`, or a ConfigError naming the
    file, the line and the field of the first problem, in the model's field order."""
    try:
        return model.model_validate(strip(mapping))
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        node, field = mapping, None
        loc = err["loc"]
        for i, key in enumerate(loc):  # down to the innermost mapping holding the field, for its line
            last = i == len(loc) - 1
            if isinstance(key, int):
                field = f"{field}[{key}]"
                item = node[key] if isinstance(node, list) and key < len(node) else None
                node = item if isinstance(item, dict) else node
            else:
                field = str(key)
                child = node.get(key) if isinstance(node, dict) else None
                if not last and isinstance(child, dict | list):
                    node = child
        if isinstance(node, list):  # an item that is not a mapping: the list's own mapping has no line here
            node = mapping
        if err["type"] == "missing":
            raise ConfigError(f"{where(path, node)}: missing required field {field!r}") from None
        msg = err["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{where(path, node, field)}: {msg}") from None
