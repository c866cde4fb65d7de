"""Ground-truth probes on the validator side: fetched from the gateway, mixed into the traffic, scored on NDCG.

`GatewayProbes.fetch()` asks `GET {proxy}/validator/probes?count=N` (ours, not the public protocol): the
request is signed with the validator's hotkey (sr25519, `subnet.signing.probe_request_message`), the answer
must carry the gateway's Ed25519 signature (the `/public_key` key) over the body, and is hostile input: a
case that is not well formed is dropped. `ProbeMixer` keeps a stock of cases, uses each once (rotation:
the stock is refilled from the gateway, which draws a fresh sample every time), and sends each to the miners
as a request shaped exactly like a live one: the same ten fields with `results`/`models_used` empty,
`created_at` now, the context as the gateway built it and rewritten as live contexts are for the network.
The bought SKUs never leave the validator; miners see a request, nothing else. Probes go out at random
(exponential) intervals on their own thread, so their timing does not single them out either.
"""

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

import requests

from bitrecs_site.http import error_text
from bitrecs_site.json_intake import parse_json
from subnet.protocol import BitrecsRequest, request_for_miners
from subnet.signing import probe_request_message, probe_response_message
from subnet.types import (
    MAX_NUM_RESULTS,
    MAX_QUERY_LENGTH,
    MIN_NUM_RESULTS,
    MIN_QUERY_LENGTH,
    build_request_body,
    format_created_at,
)
from subnet.validator.catalog import MIN_CATALOG_SIZE, CatalogEntry, catalog_for_network
from subnet.validator.keeper import ScoreKeeper
from subnet.validator.miners import MinerPool
from subnet.validator.public_key import GatewayKeyUnavailable, PublicKeySource
from subnet.validator.scoring import Reward, score_answers

logger = logging.getLogger(__name__)

DEFAULT_PROBE_INTERVAL: Final = 30.0
DEFAULT_BATCH: Final = 20
FETCH_TIMEOUT_SECONDS: Final = 10.0
_MAX_CONTEXT_CHARS: Final = 1_000_000
_MAX_BODY_BYTES: Final = 16 * 1024 * 1024


class ProbeFetchError(Exception):
    """The gateway gave no usable probes (unreachable, refused, unsigned or badly signed answer)."""


@dataclass(frozen=True)
class Probe:
    """One case: what goes to miners (`site_key`, `query`, `context`, `num_results`) and what stays (`bought`)."""

    site_key: str
    query: str
    context: str
    num_results: int
    bought: tuple[str, ...]


def parse_probes(data: Any) -> list[Probe]:
    """The well-formed cases of a probe answer `{"cases": [...]}`; anything else in it is dropped."""
    cases = data.get("cases") if isinstance(data, dict) else None
    if not isinstance(cases, list):
        return []
    probes = []
    for case in cases:
        if not isinstance(case, dict):
            continue
        site_key, query, context = case.get("site_key"), case.get("query"), case.get("context")
        num_results, bought = case.get("num_results"), case.get("bought")
        if not (isinstance(site_key, str) and site_key and isinstance(query, str) and isinstance(context, str)):
            continue
        if not MIN_QUERY_LENGTH <= len(query) <= MAX_QUERY_LENGTH or len(context) > _MAX_CONTEXT_CHARS:
            continue
        if isinstance(num_results, bool) or not isinstance(num_results, int):
            continue
        if not MIN_NUM_RESULTS <= num_results <= MAX_NUM_RESULTS:
            continue
        if not isinstance(bought, list) or not bought or not all(isinstance(sku, str) and sku for sku in bought):
            continue
        if "\x00" in site_key + query + context:
            continue
        probes.append(Probe(site_key, query, context, num_results, tuple(bought)))
    return probes


class GatewayProbes:
    """Fetches probes from the gateway, signed both ways (module docstring)."""

    def __init__(
        self,
        proxy_url: str,
        *,
        keypair: Any,
        public_key: PublicKeySource,
        count: int = DEFAULT_BATCH,
        timeout: float = FETCH_TIMEOUT_SECONDS,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.proxy_url = proxy_url.rstrip("/")
        self.keypair = keypair
        self.public_key = public_key
        self.count = count
        self._timeout = timeout
        self._session = session or requests.Session()
        self._clock = clock

    def fetch(self) -> list[Probe]:
        """Return a fresh batch of probes; raise `ProbeFetchError` when there is no usable answer."""
        path = f"/validator/probes?count={self.count}"
        url = f"{self.proxy_url}{path}"
        timestamp = str(int(self._clock()))
        hotkey = str(self.keypair.ss58_address)
        # The gateway checks the signature over the path it serves (its URL prefix included).
        signed_path = f"{urlsplit(url).path}?count={self.count}"
        signature = self.keypair.sign(probe_request_message(timestamp=timestamp, hotkey=hotkey, path=signed_path))
        headers = {"x-hotkey": hotkey, "x-timestamp": timestamp, "x-signature": bytes(signature).hex()}
        try:
            response = self._session.get(url, headers=headers, timeout=self._timeout, allow_redirects=False)
        except requests.RequestException as exc:
            raise ProbeFetchError(f"cannot reach {url}: {exc}") from exc
        if response.status_code != 200:
            reason = error_text(response, fields=("detail",), limit=200)
            raise ProbeFetchError(f"{url} answered {response.status_code}: {reason}")
        body = response.content
        if len(body) > _MAX_BODY_BYTES:
            raise ProbeFetchError(f"{url} answered more than {_MAX_BODY_BYTES} bytes")
        self._check_signature(body=body, signature=response.headers.get("x-signature", ""), timestamp=timestamp)
        try:
            data = parse_json(body, max_bytes=_MAX_BODY_BYTES)
        except ValueError as exc:
            raise ProbeFetchError(f"{url} answered something other than JSON") from exc
        return parse_probes(data)

    def _check_signature(self, *, body: bytes, signature: str, timestamp: str) -> None:
        from cryptography.exceptions import InvalidSignature

        message = probe_response_message(timestamp=timestamp, hotkey=str(self.keypair.ss58_address), body=body)
        try:
            raw = bytes.fromhex(signature)
        except ValueError as exc:
            raise ProbeFetchError("the probe answer's x-signature is not hex") from exc
        try:
            key = self.public_key.get()
        except GatewayKeyUnavailable as exc:
            raise ProbeFetchError(str(exc)) from exc
        try:
            key.verify(raw, message)
        except InvalidSignature:
            rotated = self.public_key.refresh()
            try:
                if rotated is None:
                    raise
                rotated.verify(raw, message)
            except InvalidSignature as exc:
                raise ProbeFetchError("the probe answer is not signed by the gateway's key") from exc


class ProbeMixer:
    """Sends probes to the miners among the live traffic and records their NDCG in the keeper."""

    def __init__(
        self,
        *,
        source: Callable[[], Sequence[Probe]],
        pool: MinerPool,
        keeper: ScoreKeeper,
        network: str,
        interval: float = DEFAULT_PROBE_INTERVAL,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self._source = source
        self.pool = pool
        self.keeper = keeper
        self.network = network
        self.interval = interval
        self._rng = rng or random.SystemRandom()
        self._clock = clock
        self._stock: list[Probe] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.sent = 0
        self.last_error = ""

    def next_probe(self) -> Probe | None:
        """The next unused case, refilling the stock from the gateway when it is empty; None when there is none."""
        with self._lock:
            if not self._stock:
                try:
                    self._stock = list(self._source())
                except ProbeFetchError as exc:
                    self.last_error = str(exc)
                    logger.warning("subnet.validator_probes_unavailable", extra={"error": str(exc)})
                    return None
                self._rng.shuffle(self._stock)
            return self._stock.pop() if self._stock else None

    def request_for(self, probe: Probe) -> tuple[BitrecsRequest, list[CatalogEntry]] | None:
        """The request miners get for a probe, as a live request after the validator's checks, and its catalog."""
        catalog, context = catalog_for_network(network=self.network, context=probe.context)
        if len(catalog) < MIN_CATALOG_SIZE:
            return None
        body = build_request_body(
            query=probe.query,
            context=context,
            site_key=probe.site_key,
            num_results=probe.num_results,
            created_at=format_created_at(when=self._clock()),
        )
        return request_for_miners(request=BitrecsRequest(**body)), catalog

    def run_once(self) -> list[Reward] | None:
        """Send one probe to the miners and record the rewards; None when there was no usable probe."""
        probe = self.next_probe()
        if probe is None:
            return None
        built = self.request_for(probe)
        if built is None:
            return None
        request, catalog = built
        answers = self.pool.query(request)
        rewards = score_answers(
            answers=answers, request=request, catalog=catalog, network=self.network, relevant=probe.bought
        )
        self.keeper.record(rewards, probe=True)
        self.sent += 1
        return rewards

    def start(self) -> threading.Thread:
        """Send probes at exponential intervals (mean `interval`) on a daemon thread, until `stop()`."""
        thread = threading.Thread(target=self._run, name="validator-probes", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self._rng.expovariate(1 / self.interval)):
            try:
                self.run_once()
            except Exception:  # a probe must never take the validator down
                logger.exception("subnet.validator_probe_failed")
