"""The one way the project reads YAML that people write (catalogue, mappings, parties, budgets ...):
safe, bounded, and with the line of every key so that a mistake can be named where it is.

- A file over ``MAX_BYTES`` is refused before it is parsed.
- Aliases (``*name``, and so ``<<: *base``) are refused outright: they are how a few hundred
  bytes expand to gigabytes ("billion laughs"), and a hand-written file does not need them.
- A key written twice in one mapping is a mistake (PyYAML would silently keep the last one); it is
  reported at the second key's line.
- Lines are counted from 1. A scalar that YAML reads as a number keeps the text it was written as
  (``WrittenFloat``), and an integer written other than as plain ASCII digits (``1_000``, ``0x10``,
  ``010`` - an octal 8 in YAML 1.1) stays the text it was, so that the validators can refuse it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chargeback.errors import UserError

MAX_BYTES = 5 * 1024 * 1024
"""The largest YAML file read: a catalogue of a few hundred members is some 100 kB."""

KeyPath = tuple[str | int, ...]

_PLAIN_INT = re.compile(r"-?[0-9]+", re.ASCII)
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"


class YamlFileError(UserError):
    """A YAML file that cannot be read at all: too big, not YAML, aliases; ``file:line: reason``."""

    code = "yaml.unreadable"


class WrittenFloat(float):
    """A bare YAML number with a fraction, with the text it was written as (``180.50``)."""

    written: str


@dataclass
class YamlDocument:
    """Plain data (dicts, lists, scalars), the line of every key path, and the duplicate keys."""

    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)
    duplicates: list[tuple[int, str]] = field(default_factory=list)

    def line_of(self, path: KeyPath) -> int:
        """The line of ``path``, or of its nearest parent that has one (1 for the file)."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return 1


class _NoAliasLoader(yaml.SafeLoader):
    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None,
                None,
                f"aliases (*{event.anchor}) are not allowed; write the values out in full",
                event.start_mark,
            )
        return super().compose_node(parent, index)


def _check_size(size: int, source_name: str) -> None:
    if size > MAX_BYTES:
        raise YamlFileError(
            f"{source_name}: the file is {size / 1024 / 1024:.1f} MB, more than the "
            f"{MAX_BYTES // 1024 // 1024} MB a YAML file may be; is it the right file?"
        )


def read_text(path: Path) -> str:
    """The text of a YAML file, refused when it is over ``MAX_BYTES`` (checked before reading it
    whole) or not UTF-8."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
            if len(raw) > MAX_BYTES:
                size = max(len(raw), path.stat().st_size)
                _check_size(size, str(path))
    except OSError as exc:
        raise YamlFileError(f"{path}: cannot read the file: {exc.strerror}") from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlFileError(f"{path}: not UTF-8 text (byte {exc.start + 1})") from exc


def parse(text: str, source_name: str) -> YamlDocument:
    """Parse one YAML document safely; syntax errors and aliases raise ``YamlFileError`` with the
    line, duplicate keys are returned in ``duplicates`` (``(line, message)``) for the caller to
    report along with its own checks. An empty document is ``None``."""
    _check_size(len(text.encode("utf-8")), source_name)
    loader = _NoAliasLoader(text)
    try:
        root = loader.get_single_node()
        doc = YamlDocument(None)
        if root is not None:
            doc.data = _plain(root, (), doc, loader)
            doc.lines.setdefault((), 1)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{mark.line + 1}" if mark else "1"
        column = f" (column {mark.column + 1})" if mark else ""
        raise YamlFileError(f"{source_name}:{where}: not valid YAML: {exc.problem}{column}") from exc
    except yaml.YAMLError as exc:
        raise YamlFileError(f"{source_name}:1: not valid YAML: {exc}") from exc
    finally:
        loader.dispose()
    return doc


def load(path: Path) -> YamlDocument:
    """Read and parse a YAML file (see ``read_text`` and ``parse``)."""
    return parse(read_text(path), str(path))


def load_plain(path: Path) -> Any:
    """The plain data of a YAML file, with duplicate keys an error: for loaders that do not need
    lines. Raises ``YamlFileError``."""
    doc = load(path)
    if doc.duplicates:
        raise YamlFileError("\n".join(f"{path}:{line}: {message}" for line, message in doc.duplicates))
    return doc.data


def field_path(path: KeyPath) -> str:
    """A key path as people read it: ``price_lists[0].prices.pc-standard``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _plain(node: yaml.Node, path: KeyPath, doc: YamlDocument, loader: yaml.SafeLoader) -> Any:
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        first: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a plain value, not a list or mapping", key_node.start_mark
                ) from None
            child = (*path, str(key))
            if key in first:
                doc.duplicates.append(
                    (line, f"{field_path(child)}: written twice (first at line {first[key]}); keep one")
                )
            else:
                first[key] = line
            doc.lines[child] = line
            out[key] = _plain(value_node, child, doc, loader)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_plain(item, (*path, i), doc, loader) for i, item in enumerate(node.value)]
    assert isinstance(node, yaml.ScalarNode)
    if node.tag == _INT_TAG:
        return int(node.value) if _PLAIN_INT.fullmatch(node.value) else node.value
    if node.tag == _FLOAT_TAG:
        number = WrittenFloat(loader.construct_object(node, deep=True))
        number.written = node.value
        return number
    return loader.construct_object(node, deep=True)
