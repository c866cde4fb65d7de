"""The WooCommerce plugin in a real WordPress: Debian's `wordpress` package on the machine's MariaDB, served by
PHP's built-in server. WooCommerce itself cannot be installed here (no registry we reach has it), so this shows
what WordPress does with the plugin: it activates, enqueues the widget deferred with its configuration, and
renders the shortcode's container; the WooCommerce hooks are covered by the plugin's PHPUnit tests.
"""

import http.client
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "plugins" / "woocommerce" / "bitrecs"
WORDPRESS = Path("/usr/share/wordpress")
THEME = WORDPRESS / "wp-content" / "themes" / "twentytwentyone"
CONFIG_DIR = Path("/etc/wordpress")

ROUTER = """<?php
$_SERVER['WORDPRESS_CONFIG'] = '%(config)s';
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
if (strpos($path, '/wp-content/') === 0) {
    $file = realpath('%(content)s' . substr($path, strlen('/wp-content')));
    if ($file && is_file($file)) {
        header('Content-Type: ' . (substr($file, -3) === '.js' ? 'text/javascript' : 'application/octet-stream'));
        readfile($file);
        return true;
    }
    http_response_code(404);
    return true;
}
if ($path !== '/' && is_file(__DIR__ . $path)) {
    return false;
}
require '%(wordpress)s/index.php';
"""


def _missing() -> str | None:
    for tool in ("php", "mariadb"):
        if shutil.which(tool) is None:
            return tool
    for path in (WORDPRESS / "wp-load.php", THEME):
        if not path.exists():
            return str(path)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(port: int, path: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


def _sql(statement: str) -> None:
    subprocess.run(["mariadb", "-h", "127.0.0.1", "-u", "root", "-e", statement], check=True, timeout=30)


@pytest.fixture
def wordpress(tmp_path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    missing = _missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing} is missing: `make system-packages` installs WordPress, PHP and the theme")
        pytest.skip(f"{missing} is not installed (make system-packages installs it)")
    name = f"bitrecstest{uuid.uuid4().hex[:8]}"
    port = _free_port()
    content = tmp_path / "wp-content"
    (content / "plugins").mkdir(parents=True)
    (content / "themes").mkdir()
    (content / "plugins" / "bitrecs").symlink_to(PLUGIN)
    (content / "themes" / "twentytwentyone").symlink_to(THEME)
    home = f"http://127.0.0.1:{port}"
    config = CONFIG_DIR / f"config-{name}.php"
    config.write_text(
        "<?php\n"
        f"define('DB_NAME', '{name}'); define('DB_USER', 'root'); define('DB_PASSWORD', '');\n"
        "define('DB_HOST', '127.0.0.1'); define('DB_CHARSET', 'utf8mb4'); define('DB_COLLATE', '');\n"
        f"define('WP_CONTENT_DIR', '{content}'); define('WP_CONTENT_URL', '{home}/wp-content');\n"
        f"define('WP_HOME', '{home}'); define('WP_SITEURL', '{home}');\n"
        "define('WP_DEBUG', false); define('DISABLE_WP_CRON', true); define('AUTOMATIC_UPDATER_DISABLED', true);\n"
        "define('WP_HTTP_BLOCK_EXTERNAL', true);\n"
        "$table_prefix = 'wp_';\n"
    )
    router = tmp_path / "router.php"
    router.write_text(ROUTER % {"config": name, "content": content, "wordpress": WORDPRESS})
    _sql(f"CREATE DATABASE {name}")
    server = None
    try:
        env = {**os.environ, "WORDPRESS_CONFIG": name, "BITRECS_WP_HOST": f"127.0.0.1:{port}"}
        boot = subprocess.run(
            ["php", str(PLUGIN / "tests" / "wp_boot.php")], env=env, capture_output=True, text=True, timeout=120
        )
        assert boot.returncode == 0, boot.stdout + boot.stderr
        installed = json.loads(boot.stdout.strip().splitlines()[-1])
        server = subprocess.Popen(
            ["php", "-S", f"127.0.0.1:{port}", "-t", str(WORDPRESS), str(router)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        yield port, installed
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        _sql(f"DROP DATABASE IF EXISTS {name}")
        config.unlink(missing_ok=True)


def test_wordpress_activates_the_plugin_and_enqueues_the_widget_deferred(wordpress: tuple[int, dict[str, str]]) -> None:
    # Given a real WordPress with the plugin activated and a site key saved
    port, installed = wordpress
    assert installed["active"] is True, installed["error"]

    # When a shopper opens the page that carries the shortcode
    status, html = _get(port, installed["page_url"])

    # Then the page has the placement container and the widget script, deferred, with the store's configuration
    assert status == 200
    assert (
        '<div class="bitrecs-placement" data-bitrecs-placement="home" data-bitrecs-sku="" data-bitrecs-limit="3">'
        in html
    )
    tags = [line for line in html.splitlines() if "bitrecs-widget.js" in line]
    assert len(tags) == 1, tags
    tag = tags[0]
    for attribute in ('data-site-key="wp-demo"', 'data-api-base="http://127.0.0.1:9"', "defer", "id='bitrecs-widget-js'"):
        assert attribute in tag, tag
    src = tag.split("src='", 1)[1].split("'", 1)[0]
    assert src.startswith(f"http://127.0.0.1:{port}/wp-content/plugins/bitrecs/assets/bitrecs-widget.js?ver=")

    # And the script it loads is the widget, byte for byte
    status, body = _get(port, src.split(f"127.0.0.1:{port}", 1)[1])
    assert status == 200
    assert body == (PLUGIN / "assets" / "bitrecs-widget.js").read_text()
