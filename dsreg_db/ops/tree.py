"""Render node paths as an indented tree, the way ``dsreg status`` and ``dsreg demo`` show them."""

from __future__ import annotations

from collections.abc import Iterable

Tree = dict[str, "Tree"]


def render(entries: Iterable[tuple[str, str]]) -> list[str]:
    """Lines for (path, label) pairs; intermediate segments without a node get no label."""
    tree: Tree = {}
    labels: dict[tuple[str, ...], str] = {}
    for path, label in entries:
        parts = tuple(path.strip("/").split("/"))
        level = tree
        for part in parts:
            level = level.setdefault(part, {})
        labels[parts] = label
    lines = ["/"]

    def walk(level: Tree, prefix: tuple[str, ...], indent: str) -> None:
        names = sorted(level)
        for i, name in enumerate(names):
            last = i == len(names) - 1
            key = (*prefix, name)
            label = labels.get(key)
            lines.append(f"{indent}{'└── ' if last else '├── '}{name}" + (f"  {label}" if label else ""))
            walk(level[name], key, indent + ("    " if last else "│   "))

    walk(tree, (), "")
    return lines
