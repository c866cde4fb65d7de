"""The apps depend on each other one way: merchants <- catalog_sync <- recommendations <- subnet <- portal.

Every import counts, at the top of a file or inside a function. Models, services, selectors and the rest hold
to the order. Entry points (tasks, views, management commands, tests) may compose the apps above merchants: a
finished sync enqueues the recommendations rebuild, the catalog_sync webhook task asks for lists to be refreshed.
merchants, the bottom app, imports none of the others in any file: it hands work up by Celery task name (the
webhook routing table, the first sync of an install). Nothing in catalog_sync imports subnet, and no chain of
imports leads from a module of one app back to itself through another app.
"""

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ORDER = ["merchants", "catalog_sync", "recommendations", "subnet", "portal"]
# Apps whose every file (entry points and tests included) must not import these apps.
NEVER_IMPORTED = {
    "merchants": {"catalog_sync", "recommendations", "subnet", "portal"},
    "catalog_sync": {"subnet", "portal"},
    "recommendations": {"portal"},
    "subnet": {"portal"},
}


def is_entry_point(relative: Path) -> bool:
    return relative.name in ("tasks.py", "views.py") or bool({"views", "management", "tests"} & set(relative.parts))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def imported_modules(path: Path) -> tuple[str, ...]:
    """Every module an `import` anywhere in the file names (function bodies included), relative ones resolved."""
    return tuple(_imports(path))


def _imports(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def imported_apps(path: Path) -> set[str]:
    return {name.split(".")[0] for name in imported_modules(path)} & set(ORDER)


def app_files(app: str) -> list[Path]:
    return sorted((ROOT / app).rglob("*.py"))


@pytest.mark.parametrize("app", ORDER)
def test_an_app_imports_only_the_apps_below_it(app):
    allowed = set(ORDER[: ORDER.index(app) + 1])
    offending = {
        str(path.relative_to(ROOT)): sorted(imported_apps(path) - allowed)
        for path in app_files(app)
        if not is_entry_point(path.relative_to(ROOT / app)) and imported_apps(path) - allowed
    }

    assert offending == {}


@pytest.mark.parametrize("app", sorted(NEVER_IMPORTED))
def test_no_file_of_the_lower_apps_imports_the_apps_it_must_not(app):
    offending = {
        str(path.relative_to(ROOT)): sorted(imported_apps(path) & NEVER_IMPORTED[app])
        for path in app_files(app)
        if imported_apps(path) & NEVER_IMPORTED[app]
    }

    assert offending == {}


def test_no_chain_of_imports_crosses_from_one_app_back_into_it():
    # given the import graph of every module of the apps (an import of a.b.c also runs a and a.b)
    paths = {module_name(path): path for app in ORDER for path in app_files(app)}
    graph: dict[str, set[str]] = {name: set() for name in paths}
    for name, path in paths.items():
        for imported in imported_modules(path):
            parts = imported.split(".")
            graph[name].update(".".join(parts[:n]) for n in range(1, len(parts) + 1) if ".".join(parts[:n]) in paths)

    # when each module's imports are followed as far as they go
    reachable = {name: _reachable(graph, name) for name in graph}

    # then no module of one app reaches a module of another app that reaches it back
    cycles = sorted(
        (first, second)
        for first in graph
        for second in reachable[first]
        if first.split(".")[0] < second.split(".")[0] and first in reachable[second]
    )
    assert cycles == []


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for successor in graph[todo.pop()] - seen:
            seen.add(successor)
            todo.append(successor)
    return seen
