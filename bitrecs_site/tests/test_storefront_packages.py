"""The storefront packages: the Shopify theme app extension and the WooCommerce plugin ship the widget built from its
one source, pass Shopify's Theme Check, and the plugin's PHP lints and passes its PHPUnit tests."""

import gzip
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WIDGET_SOURCE = REPO / "recommendations" / "static" / "bitrecs" / "widget.js"
EXTENSION = REPO / "extensions" / "bitrecs-widget"
PLUGIN = REPO / "plugins" / "woocommerce" / "bitrecs"
BUILT_COPIES = [EXTENSION / "assets" / "bitrecs-widget.js", PLUGIN / "assets" / "bitrecs-widget.js"]
# Theme Check's AssetSizeAppBlockJavaScript threshold, in compressed bytes.
JS_BUDGET_BYTES = 10_000


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is missing: `make system-packages` installs it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.mark.parametrize("copy", BUILT_COPIES, ids=["shopify-extension", "woocommerce-plugin"])
def test_the_packaged_widget_is_the_widget_source_byte_for_byte(copy: Path) -> None:
    assert copy.read_bytes() == WIDGET_SOURCE.read_bytes(), f"run `make storefront-assets` to rebuild {copy}"


def test_the_extension_asset_is_within_theme_checks_javascript_budget() -> None:
    compressed = len(gzip.compress(BUILT_COPIES[0].read_bytes(), compresslevel=9))
    assert compressed <= JS_BUDGET_BYTES


def test_theme_check_finds_no_offense_in_the_extension() -> None:
    node = _tool("node")
    if not (REPO / "node_modules" / "@shopify" / "theme-check-node").exists():
        pytest.fail("node_modules is missing: `make setup-dev` runs `npm ci`")
    result = subprocess.run(
        [node, str(REPO / ".ci" / "theme_check.mjs"), "--strict"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == "theme-check: 0 offenses, 0 errors"


def test_every_plugin_php_file_lints() -> None:
    php = _tool("php")
    files = sorted(PLUGIN.rglob("*.php"))
    assert len(files) >= 6
    for path in files:
        result = subprocess.run([php, "-l", str(path)], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_plugin_hooks_pass_their_phpunit_tests() -> None:
    phpunit = _tool("phpunit")
    result = subprocess.run([phpunit], cwd=PLUGIN, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK (" in result.stdout, result.stdout
