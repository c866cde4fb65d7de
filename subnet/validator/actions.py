"""The storefront actions the gateway attributes to miners: `GET {proxy}/miner/stats/from/{from}/to/{to}`.

As the public validator's `action_sync` (BITRECS_PROTOCOL.md §1.12): fetched at start-up and then every
`ACTION_SYNC_INTERVAL` seconds, for the retrospective window [now - 60 d, now - 30 d] ("to let merchants
settle"), with a 10 s timeout; errors are logged and the previous totals kept. The answer is hostile
input: anything but a JSON list is refused, and items without a known action or a hotkey are skipped.
"""

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Final

import requests

from bitrecs_site.json_intake import parse_json
from subnet.validator.scoring import action_totals

logger = logging.getLogger(__name__)

ACTION_SYNC_INTERVAL: Final = 14_400.0
FETCH_TIMEOUT_SECONDS: Final = 10.0
DAY: Final = 86_400
DEFAULT_WINDOW_DAYS: Final = (60, 30)
# More items than this in one answer are not read (a gateway bug or a hostile proxy).
MAX_ACTIONS: Final = 200_000


class GatewayActions:
    """Weighted action totals by hotkey; `start()` refreshes them on a background thread, so no request waits."""

    def __init__(
        self,
        proxy_url: str,
        *,
        interval: float = ACTION_SYNC_INTERVAL,
        window_days: tuple[int, int] = DEFAULT_WINDOW_DAYS,
        timeout: float = FETCH_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.time,
        session: requests.Session | None = None,
    ) -> None:
        oldest, newest = window_days
        if not oldest >= newest >= 0:
            raise ValueError("the window is (days ago it starts, days ago it ends), the first at least the second")
        self.proxy_url = proxy_url.rstrip("/")
        self.interval = interval
        self.window_days = window_days
        self._timeout = timeout
        self._clock = clock
        self._session = session or requests.Session()
        self._totals: dict[str, float] = {}
        self._stop = threading.Event()
        self.last_error = ""

    def url(self) -> str:
        now = int(self._clock())
        oldest, newest = self.window_days
        return f"{self.proxy_url}/miner/stats/from/{now - oldest * DAY}/to/{now - newest * DAY}"

    def totals(self) -> Mapping[str, float]:
        """The totals of the last successful fetch (empty before it)."""
        return self._totals

    def start(self) -> threading.Thread:
        """Fetch now and then every `interval` seconds on a daemon thread, until `stop()`."""
        thread = threading.Thread(target=self._run, name="validator-action-sync", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sync()
            self._stop.wait(self.interval)

    def sync(self) -> bool:
        """Fetch now; returns whether the totals were replaced."""
        url = self.url()
        try:
            response = self._session.get(url, timeout=self._timeout, allow_redirects=False)
            response.raise_for_status()
            data = parse_json(response.content)  # JsonIntakeError is a ValueError
        except (requests.RequestException, ValueError) as exc:
            self.last_error = f"cannot get miner actions from {url}: {exc}"
            logger.warning("subnet.validator_actions_failed", extra={"url": url, "error": str(exc)})
            return False
        if not isinstance(data, list):
            self.last_error = f"miner actions from {url} are not a JSON list"
            logger.warning("subnet.validator_actions_refused", extra={"url": url})
            return False
        self._totals = action_totals(item for item in data[:MAX_ACTIONS] if isinstance(item, dict))
        self.last_error = ""
        logger.info("subnet.validator_actions_synced", extra={"url": url, "actions": len(data)})
        return True
