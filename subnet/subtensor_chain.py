"""bittensor's subtensor (BITRECS_NETWORK `test`/`finney`) for the reference neurons: what `subnet.chain` gives locally.

`SubtensorChain(network=..., netuid=...)` wraps one `bt.Subtensor` and the subnet's metagraph, cached and
resynced at most every `resync_seconds`. It gives the neurons:

* registration: `is_registered` / `require_registered`. Registering on a real chain costs TAO and is the
  operator's job with btcli; nothing here ever registers (`NotRegistered` names the btcli command);
* `serve_axon(axon)`: `subtensor.serve_axon`, for a miner (or a validator advertising its API);
* `miners(exclude_hotkey=...)`: the neurons to query (BITRECS_PROTOCOL.md §3 miner selection): a serving
  axon (ip not 0.0.0.0), not the validator itself, stake at most `max_stake` (the public
  `--neuron.vpermit_tao_limit`, 4096), a random sample of `sample_size` (16) drawn again after each resync.
  The public TCP ping to the axon is not done: a dead miner times out in the dendrite and scores 0;
* `validator_hotkeys()`: the hotkeys with a validator permit, the callers a miner answers;
* `weight_sink(wallet=...)`: `SubtensorWeights`, the `WeightSink` of `subnet.validator.keeper` for the chain.

Weights (`SubtensorWeights.save`, §4): the standings go to `MinerScore` as on the local chain, then the
normalised scores become a vector over the metagraph's uids (uids gone, or whose hotkey changed since the
score was earned, get 0), go through bittensor's `process_weights` with the chain's `min_allowed_weights` and
`max_weight_limit` (`exclude_quantile = 0`; fewer non-zero weights than `min_allowed_weights`: every uid gets
1e-5 plus its weight), then `convert_weights_and_uids_for_emit` (max scaled to 65535, zeros dropped), and are
sent with `subtensor.set_weights(..., version_key=83, wait_for_inclusion=False, wait_for_finalization=False)`.
`max_weight_limit` is applied when it can be: a value outside (0, 1] is taken as 1 (no cap), and a cap the
weights cannot meet (count x limit <= 1, where `normalize_max_weight` would flatten every weight to the same
value and throw the scores away) is dropped with a warning; bittensor 10.5.0 documents that the chain does
not enforce this hyperparameter.

Every subtensor call holds one lock (the sync `Subtensor` keeps one websocket), and a failed call raises
`ChainUnreachable` naming the network and its endpoint. bittensor is imported by this module: import it only
where a real chain is used.
"""

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from subnet.protocol import bt
from subnet.validator.keeper import load_standings, save_standings
from subnet.validator.scoring import Standing

logger = logging.getLogger(__name__)

__all__ = [
    "NETWORKS",
    "VERSION_KEY",
    "ChainCallFailed",
    "ChainUnreachable",
    "MetagraphMiner",
    "NotRegistered",
    "SubtensorChain",
    "SubtensorWeights",
    "btcli_register_command",
    "chain_weights",
    "endpoint_of",
    "open_subtensor",
]

# The networks of bittensor's subtensor the neurons run on; a ws:// or wss:// endpoint is accepted too.
NETWORKS: Final = ("test", "finney")
# The public validator's spec_version (`bitrecs/__init__.py`), sent with every set_weights.
VERSION_KEY: Final = 83
DEFAULT_RESYNC_SECONDS: Final = 600.0
# §3 miner selection: `--neuron.vpermit_tao_limit` and `--neuron.sample_size` of the public validator.
VPERMIT_TAO_LIMIT: Final = 4096.0
SAMPLE_SIZE: Final = 16
# §4 step 2: the weight every uid gets when too few weights are non-zero.
_MIN_WEIGHT_FLOOR: Final = 1e-5


class ChainUnreachable(Exception):
    """The subtensor of the network could not be reached (or answered with an error)."""


class NotRegistered(Exception):
    """The hotkey is not registered on the subnet; registering (with btcli) is the operator's job."""


class ChainCallFailed(Exception):
    """The chain did not accept an extrinsic (serve_axon, set_weights)."""


@dataclass(frozen=True)
class MetagraphMiner:
    """A neuron of the metagraph to query: what `DendriteMinerPool` needs (`MinerAxon`), plus its stake."""

    uid: int
    hotkey: str
    coldkey: str
    axon_ip: str
    axon_port: int
    stake: float = 0.0


def endpoint_of(network: str) -> str:
    """The websocket endpoint bittensor connects to for `network` (a name or a ws:// URL)."""
    return str(bt.utils.determine_chain_endpoint_and_network(network)[1])


def open_subtensor(network: str) -> Any:
    """Connect to the subtensor of `network` (tests replace this with a mock chain)."""
    return bt.Subtensor(network=network)


def btcli_register_command(
    *, network: str, netuid: int, wallet_name: str = "WALLET", hotkey_name: str = "HOTKEY"
) -> str:
    return (
        f"btcli subnets register --netuid {netuid} --network {network} "
        f"--wallet.name {wallet_name} --wallet.hotkey {hotkey_name}"
    )


class SubtensorChain:
    """One subnet of bittensor's subtensor, as the reference neurons need it (module docstring)."""

    def __init__(
        self,
        *,
        network: str,
        netuid: int,
        subtensor: Any = None,
        resync_seconds: float = DEFAULT_RESYNC_SECONDS,
        max_stake: float | None = VPERMIT_TAO_LIMIT,
        sample_size: int | None = SAMPLE_SIZE,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.network = network
        self.netuid = netuid
        self.resync_seconds = resync_seconds
        self.max_stake = max_stake
        self.sample_size = sample_size
        self._clock = clock
        self._rng = rng or random.SystemRandom()
        self._lock = threading.RLock()
        self._metagraph: Any = None
        self._synced_at: float | None = None
        self._validators: frozenset[str] = frozenset()
        self._sample: dict[str, list[MetagraphMiner]] = {}
        if subtensor is None:
            try:
                subtensor = open_subtensor(network)
            except Exception as exc:  # websocket, DNS, TLS, timeout: bittensor raises several kinds
                raise ChainUnreachable(self._unreachable(exc)) from exc
        self.subtensor = subtensor
        self.endpoint = str(getattr(subtensor, "chain_endpoint", "") or endpoint_of(network))

    def _unreachable(self, exc: BaseException) -> str:
        endpoint = getattr(self, "endpoint", "") or endpoint_of(self.network)
        return f"cannot reach the {self.network!r} subtensor at {endpoint}: {type(exc).__name__}: {exc}"

    def _call(self, what: Callable[[], Any]) -> Any:
        with self._lock:
            try:
                return what()
            except (ChainCallFailed, NotRegistered):
                raise
            except Exception as exc:
                raise ChainUnreachable(self._unreachable(exc)) from exc

    # ------------------------------------------------------------------------------------------- metagraph

    def sync(self) -> Any:
        """Read the subnet's metagraph now (`subtensor.metagraph(netuid, lite=True)`); raises `ChainUnreachable`."""
        with self._lock:
            metagraph = self._call(lambda: self.subtensor.metagraph(netuid=self.netuid, lite=True))
            self._metagraph = metagraph
            self._synced_at = self._clock()
            self._sample = {}
            self._validators = frozenset(
                str(hotkey)
                for uid, hotkey in enumerate(metagraph.hotkeys)
                if uid < len(metagraph.validator_permit) and bool(metagraph.validator_permit[uid])
            )
            logger.info(
                "subnet.subtensor_synced",
                extra={"network": self.network, "netuid": self.netuid, "neurons": len(metagraph.hotkeys)},
            )
            return metagraph

    def metagraph(self) -> Any:
        """The cached metagraph, resynced once `resync_seconds` have passed; a failed resync keeps the old one."""
        with self._lock:
            if self._metagraph is None:
                return self.sync()
            if self._synced_at is not None and self._clock() - self._synced_at < self.resync_seconds:
                return self._metagraph
            try:
                return self.sync()
            except ChainUnreachable as exc:
                logger.warning("subnet.subtensor_resync_failed", extra={"error": str(exc)})
                self._synced_at = self._clock()  # try again after another period, not on every call
                return self._metagraph

    def uid_of(self, hotkey: str) -> int | None:
        hotkeys = list(self.metagraph().hotkeys)
        return hotkeys.index(hotkey) if hotkey in hotkeys else None

    # ----------------------------------------------------------------------------------------- registration

    def is_registered(self, hotkey: str) -> bool:
        """Whether `hotkey` holds a uid on the subnet (`subtensor.is_hotkey_registered`)."""
        return bool(self._call(lambda: self.subtensor.is_hotkey_registered(hotkey_ss58=hotkey, netuid=self.netuid)))

    def require_registered(self, hotkey: str, *, wallet_name: str = "WALLET", hotkey_name: str = "HOTKEY") -> int:
        """The hotkey's uid; `NotRegistered` (naming the btcli command) if it has none. Never registers."""
        if not self.is_registered(hotkey):
            command = btcli_register_command(
                network=self.network, netuid=self.netuid, wallet_name=wallet_name, hotkey_name=hotkey_name
            )
            raise NotRegistered(
                f"hotkey {hotkey} is not registered on netuid {self.netuid} of {self.network!r} ({self.endpoint}). "
                f"Registration costs TAO and is not done by this command: register it with btcli, e.g. `{command}`."
            )
        uid = self.uid_of(hotkey)
        if uid is None:  # registered after the cached metagraph was read
            self.sync()
            uid = self.uid_of(hotkey)
        if uid is None:
            raise NotRegistered(f"hotkey {hotkey} is registered but not in the metagraph of netuid {self.netuid}")
        return uid

    def has_validator_permit(self, hotkey: str) -> bool:
        self.metagraph()
        return hotkey in self._validators

    def validator_hotkeys(self, *, resync: bool = True) -> frozenset[str]:
        """The hotkeys with a validator permit. `resync=False` only reads the cache (safe in the axon's loop)."""
        if resync or self._metagraph is None:
            self.metagraph()
        return self._validators

    def validator_allow_list(self) -> Callable[[], frozenset[str]]:
        """A miner's allow-list: the permitted validators of the cached metagraph, read without any chain call.

        The axon calls it inside its event loop, so it never resyncs; the miner's main loop calls `metagraph()`.
        """
        return lambda: self.validator_hotkeys(resync=False)

    # ------------------------------------------------------------------------------------------------ axons

    def serve_axon(self, axon: Any) -> None:
        """Publish the axon's external ip and port for its wallet's hotkey (`subtensor.serve_axon`)."""
        response = self._call(
            lambda: self.subtensor.serve_axon(
                netuid=self.netuid, axon=axon, wait_for_inclusion=True, wait_for_finalization=False
            )
        )
        if not response.success:
            raise ChainCallFailed(f"serve_axon on netuid {self.netuid} was not accepted: {response.message}")
        with self._lock:
            self._synced_at = None  # the next read resyncs and sees the axon

    def miners(self, *, exclude_hotkey: str = "") -> list[MetagraphMiner]:
        """The neurons to query (module docstring); the sample is drawn again after each resync."""
        with self._lock:
            metagraph = self.metagraph()
            if exclude_hotkey not in self._sample:
                eligible = [
                    miner
                    for miner in _serving(metagraph)
                    if miner.hotkey != exclude_hotkey and (self.max_stake is None or miner.stake <= self.max_stake)
                ]
                if self.sample_size is not None and len(eligible) > self.sample_size:
                    eligible = sorted(self._rng.sample(eligible, self.sample_size), key=lambda miner: miner.uid)
                self._sample[exclude_hotkey] = eligible
            return list(self._sample[exclude_hotkey])

    # ---------------------------------------------------------------------------------------------- weights

    def weight_sink(self, *, wallet: Any) -> "SubtensorWeights":
        return SubtensorWeights(chain=self, wallet=wallet)

    def weight_limits(self) -> tuple[int, float | None]:
        """The subnet's `min_allowed_weights` (0 if unknown) and `max_weight_limit` (None if unknown)."""
        minimum = self._call(lambda: self.subtensor.min_allowed_weights(netuid=self.netuid))
        limit = self._call(lambda: self.subtensor.max_weight_limit(netuid=self.netuid))
        return int(minimum or 0), (None if limit is None else float(limit))

    def set_weights(self, *, wallet: Any, uids: Sequence[int], weights: Sequence[int]) -> None:
        """Send weights already processed for the chain; `ChainCallFailed` if bittensor did not submit them."""
        response = self._call(
            lambda: self.subtensor.set_weights(
                wallet=wallet,
                netuid=self.netuid,
                uids=list(uids),
                weights=list(weights),
                version_key=VERSION_KEY,
                wait_for_inclusion=False,
                wait_for_finalization=False,
            )
        )
        if not response.success:
            # bittensor 10.5.0 does not even submit when `blocks_since_last_update <= weights_rate_limit`,
            # and then gives no message.
            reason = response.message or "not submitted (too soon after the last update: weights_rate_limit?)"
            raise ChainCallFailed(f"set_weights on netuid {self.netuid} failed: {reason}")


def _serving(metagraph: Any) -> list[MetagraphMiner]:
    """The metagraph's neurons whose axon serves (ip not 0.0.0.0), by uid."""
    stakes = list(getattr(metagraph, "S", []))
    found = []
    for uid, axon in enumerate(metagraph.axons):
        if not axon.is_serving:
            continue
        found.append(
            MetagraphMiner(
                uid=uid,
                hotkey=str(metagraph.hotkeys[uid]),
                coldkey=str(axon.coldkey or ""),
                axon_ip=str(axon.ip),
                axon_port=int(axon.port),
                stake=float(stakes[uid]) if uid < len(stakes) else 0.0,
            )
        )
    return found


def chain_weights(
    weights: Mapping[int, float], *, n: int, min_allowed_weights: int, max_weight_limit: float | None
) -> tuple[list[int], list[int]]:
    """The public validator's weights for the chain (§4 steps 1-3): uids and u16 values, zeros dropped.

    `weights` (uid -> weight) is spread over the metagraph's `n` uids (others dropped) and normalised to sum
    1; nothing is set (empty lists) when every weight is 0.
    """
    raw = np.zeros(n, dtype=np.float32)
    for uid, weight in weights.items():
        if 0 <= uid < n and math.isfinite(weight) and weight > 0:
            raw[uid] = weight
    total = float(raw.sum())
    if n == 0 or total <= 0:
        return [], []
    raw /= total
    nonzero = int((raw > 0).sum())
    capped = n if nonzero < min_allowed_weights else nonzero  # how many weights normalize_max_weight sees
    limit = max_weight_limit if max_weight_limit is not None and 0 < max_weight_limit <= 1 else 1.0
    if capped * limit <= 1 and limit < 1:
        logger.warning(
            "subnet.max_weight_limit_ignored", extra={"max_weight_limit": limit, "weights": capped}
        )  # normalize_max_weight would make every weight equal
        limit = 1.0
    uids, processed = bt.utils.weight_utils.process_weights(
        uids=np.arange(n, dtype=np.int64),
        weights=raw,
        num_neurons=n,
        min_allowed_weights=min_allowed_weights,
        max_weight_limit=limit,
        exclude_quantile=0,
    )
    emit_uids, emit_weights = bt.utils.weight_utils.convert_weights_and_uids_for_emit(uids=uids, weights=processed)
    return [int(uid) for uid in emit_uids], [int(value) for value in emit_weights]


class SubtensorWeights:
    """A `WeightSink`: standings in `MinerScore` (churn from the metagraph), weights on bittensor's subtensor."""

    def __init__(self, *, chain: SubtensorChain, wallet: Any) -> None:
        self.chain = chain
        self.wallet = wallet
        self.validator_hotkey = str(wallet.hotkey.ss58_address)
        self.last_set: tuple[list[int], list[int]] | None = None

    def _current(self) -> dict[int, str]:
        return {uid: str(hotkey) for uid, hotkey in enumerate(self.chain.metagraph().hotkeys)}

    def load(self) -> dict[int, Standing]:
        return load_standings(netuid=self.chain.netuid, validator_hotkey=self.validator_hotkey, current=self._current())

    def save(self, *, standings: Mapping[int, Standing], weights: Mapping[int, float]) -> None:
        save_standings(netuid=self.chain.netuid, validator_hotkey=self.validator_hotkey, standings=standings)
        if not weights:
            return
        current = self._current()
        # A score earned by a hotkey that no longer holds the uid is not given to the newcomer.
        kept = {
            uid: weight
            for uid, weight in weights.items()
            if uid in standings and current.get(uid) == standings[uid].hotkey
        }
        minimum, limit = self.chain.weight_limits()
        uids, values = chain_weights(kept, n=len(current), min_allowed_weights=minimum, max_weight_limit=limit)
        if not uids:
            logger.info("subnet.subtensor_no_weights", extra={"netuid": self.chain.netuid})
            return
        self.chain.set_weights(wallet=self.wallet, uids=uids, weights=values)
        self.last_set = (uids, values)
