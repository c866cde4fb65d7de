"""The user-run management commands on a database that was never migrated: one message saying what to run, no
traceback (a fresh checkout, or DATABASE_URL pointing at a new database)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
TINY = BASE_DIR / "recommendations" / "tests" / "data" / "tiny_interactions.json"


def _run(args: list[str], database: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "DJANGO_SETTINGS_MODULE": "bitrecs_site.settings"}
    return subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "args",
    [
        ["evaluate_recs", "--interactions", str(TINY), "--no-progress"],
        ["import_catalog", "--store", "demo", str(TINY)],
        ["create_store", "--platform", "woocommerce", "--domain", "shop.example", "--site-key", "x"],
    ],
    ids=["evaluate_recs", "import_catalog", "create_store"],
)
def test_a_command_on_an_unmigrated_database_says_to_migrate(tmp_path: Path, args: list[str]) -> None:
    database = tmp_path / "new.sqlite3"
    result = _run(args, database)
    assert result.returncode == 1, result.stderr
    assert "unapplied migration(s)" in result.stderr
    assert "run `make migrate` (or `python manage.py migrate`) first." in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
