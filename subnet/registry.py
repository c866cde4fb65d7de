"""Which validator the gateway asks: the validators of the metagraph, their API endpoints and keys, their health.

Sources, by `BITRECS_NETWORK`:
* `BITRECS_VALIDATOR_URL` set: that one validator, whatever the network (a fixed deployment, or tests);
* `local`: the validators registered on the local chain that serve their API (`run_validator --local-chain`
  records its API address as its axon);
* `test` / `finney`: the subnet's metagraph from bittensor's subtensor: neurons with a validator permit and
  a serving axon, reached at `http://<axon ip>:BITRECS_VALIDATOR_API_PORT` (7779, §1.1), with their stake.
  The list is cached for `BITRECS_METAGRAPH_TTL_SECONDS`.

Each validator has its own API key: `BITRECS_VALIDATOR_API_KEYS` (`hotkey=key,...`), else `BITRECS_API_KEY`.
A validator that failed in a way another may not (unreachable, rate limited, no miners) is marked down for a
while in the shared cache, and `/ping` decides the health of one not checked recently. `choose_validator`
draws among the healthy ones with probability proportional to stake.
"""

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from django.conf import settings
from django.core.cache import cache

from subnet import chain
from subnet.client import ValidatorClient, ValidatorError
from subnet.models import ChainNeuron

logger = logging.getLogger(__name__)

_HEALTH_KEY: Final = "subnet:validator-health:{url}"
_METAGRAPH_KEY: Final = "subnet:metagraph-validators:{network}:{netuid}"
# Stake given to a validator with none, so that a chain of unstaked validators is still drawn from evenly.
_MIN_STAKE: Final = 1e-9
UP: Final = "up"
DOWN: Final = "down"


@dataclass(frozen=True)
class ValidatorEndpoint:
    """A validator the gateway may ask: its API base URL, hotkey (may be "" for a fixed URL) and stake."""

    url: str
    hotkey: str = ""
    stake: float = 1.0
    uid: int | None = None

    @property
    def api_key(self) -> str:
        keys: dict[str, str] = settings.BITRECS_VALIDATOR_API_KEYS
        return keys.get(self.hotkey, settings.BITRECS_API_KEY) if self.hotkey else settings.BITRECS_API_KEY


def list_validators() -> list[ValidatorEndpoint]:
    """The validators the gateway can ask, for the configured network (module docstring)."""
    if settings.BITRECS_VALIDATOR_URL:
        return [ValidatorEndpoint(url=settings.BITRECS_VALIDATOR_URL)]
    return load_validators_of_network()


def load_validators_of_network() -> list[ValidatorEndpoint]:
    """The validators of BITRECS_NETWORK's chain (the local chain, or the cached metagraph), whatever the fixed URL."""
    if settings.BITRECS_NETWORK == "local":
        return list_local_validators(netuid=settings.BITRECS_NETUID)
    key = _METAGRAPH_KEY.format(network=settings.BITRECS_NETWORK, netuid=settings.BITRECS_NETUID)
    cached = cache.get(key)
    if cached is None:
        try:
            cached = load_metagraph_validators(network=settings.BITRECS_NETWORK, netuid=settings.BITRECS_NETUID)
        except Exception as exc:  # the chain is another process on the internet: any failure means "none now"
            logger.warning(
                "subnet.metagraph_unavailable", extra={"network": settings.BITRECS_NETWORK, "error": str(exc)}
            )
            return []
        cache.set(key, cached, timeout=int(settings.BITRECS_METAGRAPH_TTL_SECONDS))
    return list(cached)


def list_local_validators(*, netuid: int) -> list[ValidatorEndpoint]:
    rows = chain.list_serving(netuid=netuid, role=ChainNeuron.Role.VALIDATOR)
    return [
        ValidatorEndpoint(
            url=_api_url(row.axon_ip, int(row.axon_port or 0)), hotkey=row.hotkey, stake=row.stake, uid=row.uid
        )
        for row in rows
    ]


def load_metagraph_validators(*, network: str, netuid: int) -> list[ValidatorEndpoint]:
    """Read the subnet's metagraph from the subtensor of `network` (needs the chain's RPC endpoint)."""
    from subnet.protocol import bt  # bittensor only where a chain is really read

    metagraph = bt.Subtensor(network=network).metagraph(netuid=netuid, lite=True)
    return validators_from_metagraph(metagraph, api_port=int(settings.BITRECS_VALIDATOR_API_PORT))


def validators_from_metagraph(metagraph: Any, *, api_port: int) -> list[ValidatorEndpoint]:
    """Validators of a bittensor `Metagraph`: a validator permit and a serving axon (ip not 0.0.0.0)."""
    endpoints = []
    for uid, axon in enumerate(metagraph.axons):
        if not bool(metagraph.validator_permit[uid]) or not axon.is_serving:
            continue
        endpoints.append(
            ValidatorEndpoint(
                url=_api_url(str(axon.ip), api_port),
                hotkey=str(axon.hotkey),
                stake=float(metagraph.S[uid]),
                uid=uid,
            )
        )
    return endpoints


def _api_url(ip: str, port: int) -> str:
    host = f"[{ip}]" if ":" in ip else ip
    return f"http://{host}:{port}"


# -------------------------------------------------------------------------------------------- health


def mark_down(endpoint: ValidatorEndpoint, *, seconds: float | None = None) -> None:
    """Skip this validator for `seconds` (default BITRECS_VALIDATOR_DOWN_SECONDS), in every process."""
    timeout = max(1, int(seconds if seconds is not None else settings.BITRECS_VALIDATOR_DOWN_SECONDS))
    cache.set(_HEALTH_KEY.format(url=endpoint.url), DOWN, timeout=timeout)


def is_healthy(endpoint: ValidatorEndpoint, *, ping: Callable[[ValidatorEndpoint], None] | None = None) -> bool:
    """The cached health, else `/ping` now (cached for BITRECS_VALIDATOR_HEALTH_TTL_SECONDS either way)."""
    key = _HEALTH_KEY.format(url=endpoint.url)
    state = cache.get(key)
    if state is None:
        try:
            (ping or _ping)(endpoint)
        except ValidatorError as exc:
            logger.warning("subnet.validator_unhealthy", extra={"url": endpoint.url, "error": type(exc).__name__})
            state = DOWN
        else:
            state = UP
        cache.set(key, state, timeout=int(settings.BITRECS_VALIDATOR_HEALTH_TTL_SECONDS))
    return bool(state == UP)


def _ping(endpoint: ValidatorEndpoint) -> None:
    client_for(endpoint).ping()


def choose_validator(
    *,
    endpoints: Sequence[ValidatorEndpoint] | None = None,
    rng: random.Random | None = None,
    ping: Callable[[ValidatorEndpoint], None] | None = None,
) -> ValidatorEndpoint | None:
    """Draw a healthy validator with probability proportional to stake; None if none is healthy.

    Candidates are drawn by stake without replacement, and each is checked (cached health or `/ping`) until
    one is healthy, so a large metagraph costs pings only until the first healthy draw.
    """
    candidates = list(list_validators() if endpoints is None else endpoints)
    draw = rng or random.SystemRandom()
    while candidates:
        weights = [max(endpoint.stake, _MIN_STAKE) for endpoint in candidates]
        endpoint = draw.choices(candidates, weights=weights)[0]
        if is_healthy(endpoint, ping=ping):
            return endpoint
        candidates.remove(endpoint)
    return None


def client_for(endpoint: ValidatorEndpoint) -> ValidatorClient:
    """A signed client for this validator, with its API key, for `BITRECS_NETWORK`."""
    return ValidatorClient(
        endpoint.url,
        endpoint.api_key,
        network=settings.BITRECS_NETWORK,
        timeout=settings.BITRECS_VALIDATOR_TIMEOUT_SECONDS,
        call_budget=settings.BITRECS_VALIDATOR_CALL_BUDGET_SECONDS,
        max_in_flight=settings.BITRECS_VALIDATOR_MAX_IN_FLIGHT,
        requests_per_minute=settings.BITRECS_VALIDATOR_REQUESTS_PER_MINUTE,
    )
