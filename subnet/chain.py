"""The local chain (BITRECS_NETWORK=local): registrations, axons, stake and weights kept in the database.

bittensor's `MockSubtensor` keeps its state in one process (BITRECS_PROTOCOL.md §12), while the
validator and the miners are separate processes; they all read and write these tables instead. No
bittensor import here: the gateway and the commands use this module without loading bittensor.
"""

import math
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from subnet.models import ChainNeuron, ChainWeight

__all__ = [
    "NotRegistered",
    "get_weights",
    "is_registered",
    "list_miners",
    "list_serving",
    "list_validator_hotkeys",
    "register_neuron",
    "serve_axon",
    "set_weights",
    "validator_allow_list",
]

# Attempts at taking the next free uid when another process registers at the same moment.
_REGISTER_ATTEMPTS = 5


class NotRegistered(Exception):
    """The hotkey is not registered on this netuid of the local chain."""


def register_neuron(
    *, netuid: int, hotkey: str, role: str, coldkey: str = "", stake: float | None = None
) -> ChainNeuron:
    """Register `hotkey` with the lowest free uid; a hotkey already registered keeps its uid (idempotent).

    A repeated registration updates the role, the coldkey (when given), the stake (when given) and
    `last_seen_at`.
    """
    if role not in ChainNeuron.Role.values:
        raise ValueError(f"unknown role {role!r}")
    if not hotkey:
        raise ValueError("a hotkey is required")
    for _ in range(_REGISTER_ATTEMPTS):
        existing = ChainNeuron.objects.filter(netuid=netuid, hotkey=hotkey).first()
        now = timezone.now()
        if existing is not None:
            existing.role = role
            existing.coldkey = coldkey or existing.coldkey
            existing.stake = existing.stake if stake is None else stake
            existing.last_seen_at = now
            existing.save(update_fields=["role", "coldkey", "stake", "last_seen_at"])
            return existing
        try:
            with transaction.atomic():
                taken = set(ChainNeuron.objects.filter(netuid=netuid).values_list("uid", flat=True))
                uid = next(candidate for candidate in range(len(taken) + 1) if candidate not in taken)
                return ChainNeuron.objects.create(
                    netuid=netuid,
                    uid=uid,
                    hotkey=hotkey,
                    coldkey=coldkey,
                    role=role,
                    stake=stake or 0.0,
                    registered_at=now,
                    last_seen_at=now,
                )
        except IntegrityError:
            continue  # another process took this uid (or registered this hotkey): look again
    raise RuntimeError(f"could not register {hotkey} on netuid {netuid}")


def serve_axon(*, netuid: int, hotkey: str, ip: str, port: int) -> ChainNeuron:
    """Record the axon a registered hotkey serves on."""
    if not 0 < port < 65536:
        raise ValueError(f"invalid port {port}")
    updated = ChainNeuron.objects.filter(netuid=netuid, hotkey=hotkey).update(
        axon_ip=ip, axon_port=port, last_seen_at=timezone.now()
    )
    if not updated:
        raise NotRegistered(f"{hotkey} is not registered on netuid {netuid}")
    return ChainNeuron.objects.get(netuid=netuid, hotkey=hotkey)


def is_registered(*, netuid: int, hotkey: str) -> bool:
    return ChainNeuron.objects.filter(netuid=netuid, hotkey=hotkey).exists()


def list_serving(*, netuid: int, role: str) -> list[ChainNeuron]:
    """The registered neurons of `role` that serve an axon (a validator's axon is its API address), by uid."""
    return list(
        ChainNeuron.objects.filter(netuid=netuid, role=role, axon_port__isnull=False)
        .exclude(axon_ip="")
        .order_by("uid")
    )


def list_miners(*, netuid: int) -> list[ChainNeuron]:
    """The registered miners that serve an axon, by uid."""
    return list_serving(netuid=netuid, role=ChainNeuron.Role.MINER)


def list_validator_hotkeys(*, netuid: int) -> frozenset[str]:
    """The hotkeys registered as validators: the callers a local miner answers."""
    return frozenset(
        ChainNeuron.objects.filter(netuid=netuid, role=ChainNeuron.Role.VALIDATOR).values_list("hotkey", flat=True)
    )


def validator_allow_list(*, netuid: int) -> Callable[[], frozenset[str]]:
    """A callable returning the registered validator hotkeys, read anew on every call: a miner's allow-list.

    The axon calls its blacklist function inside its event loop, where Django refuses queries, so the
    read runs on a worker thread (and closes that thread's connection afterwards).
    """
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chain-allow-list")

    def read() -> frozenset[str]:
        try:
            return list_validator_hotkeys(netuid=netuid)
        finally:
            connection.close()

    def allowed_hotkeys() -> frozenset[str]:
        return executor.submit(read).result()

    return allowed_hotkeys


def set_weights(*, netuid: int, validator_hotkey: str, weights: Mapping[int, float]) -> dict[int, float]:
    """Replace the validator's weights with `weights` normalised to sum 1 (zeros dropped); returns what was stored."""
    if not ChainNeuron.objects.filter(netuid=netuid, hotkey=validator_hotkey, role=ChainNeuron.Role.VALIDATOR).exists():
        raise NotRegistered(f"{validator_hotkey} is not a validator on netuid {netuid}")
    for uid, weight in weights.items():
        if uid < 0 or not math.isfinite(weight) or weight < 0:
            raise ValueError(f"invalid weight {weight!r} for uid {uid}")
    total = math.fsum(weights.values())
    if total <= 0:
        raise ValueError("weights must not all be zero")
    normalised = {uid: weight / total for uid, weight in weights.items() if weight > 0}
    now = timezone.now()
    with transaction.atomic():
        ChainWeight.objects.filter(netuid=netuid, validator_hotkey=validator_hotkey).delete()
        ChainWeight.objects.bulk_create(
            ChainWeight(netuid=netuid, validator_hotkey=validator_hotkey, miner_uid=uid, weight=weight, set_at=now)
            for uid, weight in sorted(normalised.items())
        )
    return normalised


def get_weights(*, netuid: int, validator_hotkey: str) -> dict[int, float]:
    """The validator's current weights by miner uid (empty if it never set any)."""
    return dict(
        ChainWeight.objects.filter(netuid=netuid, validator_hotkey=validator_hotkey)
        .order_by("miner_uid")
        .values_list("miner_uid", "weight")
    )
