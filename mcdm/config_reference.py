"""The ``mcdm train KIND`` configuration reference, generated from each trainer's dataclass (so it cannot go stale).

``mcdm train KIND --help-config`` prints KIND's table; ``python -m mcdm.config_reference docs/training.md`` writes
each registered trainer's table between its markers on that page, and a test fails when a copy differs.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any

from omegaconf import MISSING



def key(default: Any = MISSING, doc: str = "", *, factory: Any = None):
    """A configuration key with its one-line description (``mcdm train KIND --help-config`` prints the table)."""
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata={"doc": doc})
    return dataclasses.field(default=default, metadata={"doc": doc})


def rows(schema: type, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(key, type, default, description) of every key, nested dataclasses as ``data.size``."""
    hints = typing.get_type_hints(schema)
    found = []
    for f in dataclasses.fields(schema):
        kind, key = hints[f.name], prefix + f.name
        if dataclasses.is_dataclass(kind):
            found += rows(kind, key + ".")
            continue
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if not f.metadata.get("doc"):
            raise ValueError(f"configuration key {key!r} has no description (metadata 'doc')")
        found.append((key, _type_name(kind), _default(default), f.metadata["doc"]))
    return found


def table(schema: type) -> str:
    lines = ["| key | type | default | what it does |", "|---|---|---|---|"]
    lines += [f"| `{key}` | {kind} | {default} | {doc} |" for key, kind, default, doc in rows(schema)]
    return "\n".join(lines) + "\n"


def markers(kind: str) -> tuple[str, str]:
    """The comments between which a page holds the table of trainer ``kind``."""
    return f"<!-- train-config:{kind}:start -->", f"<!-- train-config:{kind}:end -->"


def trainer_table(kind: str) -> str:
    """The table of the trainer registered as ``kind`` (``mcdm train KIND --help-config``)."""
    from mcdm.plugins import make_plugin_manager

    return table(make_plugin_manager().trainer(kind).schema)


def with_table(text: str, generated: str, kind: str) -> str:
    """``text`` with the part between ``kind``'s markers replaced by ``generated``."""
    start, end = markers(kind)
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), flags=re.S)
    if not pattern.search(text):
        raise ValueError(f"no {start} ... {end} markers")
    return pattern.sub(lambda _: f"{start}\n{generated}{end}", text)


def with_every_table(text: str) -> str:
    """``text`` with the table of every registered trainer whose markers it holds brought up to date."""
    from mcdm.plugins import make_plugin_manager

    for kind in make_plugin_manager().trainers:
        if markers(kind)[0] in text:
            text = with_table(text, trainer_table(kind), kind)
    return text


def _type_name(kind) -> str:
    if typing.get_origin(kind) is typing.Literal:
        return " \\| ".join(str(v) for v in typing.get_args(kind))
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return " \\| ".join(str(m.value) for m in kind)
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and len(args) == 1:
        return f"{_type_name(args[0])} or null"
    return getattr(kind, "__name__", str(kind).replace("typing.", ""))


def _default(value) -> str:
    if value == "???":
        return "required"
    if isinstance(value, enum.Enum):
        value = value.value
    return f"`{json.dumps(value)}`".replace("|", "\\|")


if __name__ == "__main__":
    page = Path(sys.argv[1])
    page.write_text(with_every_table(page.read_text()))
