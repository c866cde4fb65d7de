"""The apps depend on each other one way: merchants <- catalog_sync <- recommendations <- subnet.

Models, services, selectors and the rest hold to it. Entry points (tasks, views, management commands) may
compose apps: a finished sync enqueues the recommendations rebuild, an install enqueues the first sync.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ORDER = ["merchants", "catalog_sync", "recommendations", "subnet"]


def is_entry_point(relative: Path) -> bool:
    return relative.name in ("tasks.py", "views.py") or bool({"views", "management", "tests"} & set(relative.parts))


def imported_apps(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & set(ORDER)


@pytest.mark.parametrize("app", ORDER)
def test_an_app_imports_only_the_apps_below_it(app):
    allowed = set(ORDER[: ORDER.index(app) + 1])
    offending = {
        str(path.relative_to(ROOT)): sorted(imported_apps(path) - allowed)
        for path in sorted((ROOT / app).rglob("*.py"))
        if not is_entry_point(path.relative_to(ROOT / app)) and imported_apps(path) - allowed
    }

    assert offending == {}
