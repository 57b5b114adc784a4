"""YAML loading that remembers the line of every key, so errors can name it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from radraft.core.errors import ConfigError

Location = tuple[str | int, ...]


class LineMap:
    """Maps a key path such as ("dicom", "port") to its 1-based line in the file."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.lines: dict[Location, int] = {}

    def line_of(self, loc: Location) -> int | None:
        """The line of `loc` or of its nearest ancestor that has one."""
        for cut in range(len(loc), 0, -1):
            line = self.lines.get(tuple(loc[:cut]))
            if line is not None:
                return line
        return None

    def where(self, loc: Location) -> str:
        line = self.line_of(loc)
        name = str(self.path) if self.path else "<config>"
        return f"{name}:{line}" if line else name


def _to_python(node: yaml.Node, loc: Location, lines: LineMap) -> Any:
    lines.lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.safe_load(yaml.serialize(key_node))
            child = (*loc, key)
            lines.lines[child] = key_node.start_mark.line + 1
            out[key] = _to_python(value_node, child, lines)
            lines.lines[child] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, (*loc, i), lines) for i, item in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors and aliases (the "billion laughs" expansion) with an
    error at the line of the first one."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases (&name, *name) are not allowed here",
                event.start_mark)
        return super().compose_node(parent, index)


def load_yaml_with_lines(path: Path, *, aliases: bool = True) -> tuple[Any, LineMap]:
    """Parse `path`; a syntax error becomes a ConfigError naming file and line. With
    `aliases=False` (files a console user can write) an anchor or alias is such an error."""
    lines = LineMap(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader if aliases else _NoAliasLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: YAML syntax error: {exc.problem}") from exc
    if node is None:
        return {}, lines
    return _to_python(node, (), lines), lines
