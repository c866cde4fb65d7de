"""The `BitrecsRequest` synapse of the Bitrecs v1 subnet (BITRECS_PROTOCOL.md §2), wire-compatible with the public one.

Importing this module imports bittensor (about half a second; it creates `~/.bittensor/` and starts a
logging thread), so only the reference neurons import it, and they import bittensor through it. The
gateway builds and signs bodies with `subnet.types` and `subnet.signing` alone. No
`from __future__ import annotations` here: bittensor's `Axon.attach()` reads the real annotations.
"""

import functools
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

import pydantic

from bitrecs_site.json_intake import parse_json
from subnet.types import REQUEST_FIELDS, RequestBody


@contextmanager
def _loggers_preserved() -> Iterator[None]:
    """Restore the level, handlers and flags of every logger that exists before the block.

    bittensor 10.5.0 builds its logging machine at import time, and that strips the handlers of
    every existing logger and sets each one to CRITICAL: without this, importing bittensor in a
    Django process (or a test session) silences Django's and the apps' loggers.
    """
    saved = [
        (logger, logger.level, list(logger.handlers), logger.propagate, logger.disabled)
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    try:
        yield
    finally:
        for logger, level, handlers, propagate, disabled in saved:
            logger.setLevel(level)
            logger.handlers[:] = handlers
            logger.propagate = propagate
            logger.disabled = disabled


with _loggers_preserved():
    import bittensor as bt

__all__ = ["REQUEST_FIELDS", "BitrecsRequest", "parse_request", "request_for_miners", "sign_request_bodies"]


class BitrecsRequest(bt.Synapse):
    """One recommendation request: gateway → validator (`POST /rec` body) → miners (axon route `/BitrecsRequest`).

    Nine fields are `X | None` with no default, so their keys are required (the value may be null);
    only `num_results` has a default. Inherited synapse fields (`name`, `timeout`, `total_size`,
    `header_size`, `dendrite`, `axon`, `computed_body_hash`) are optional and `name` is always
    "BitrecsRequest"; unknown keys are ignored.
    """

    created_at: str | None
    user: str | None
    num_results: int = pydantic.Field(0, description="Expected number of recs")
    query: str | None
    context: str | None
    site_key: str | None
    results: list | None
    models_used: list | None
    miner_uid: str | None
    miner_hotkey: str | None

    # Empty by default, as in the public synapse: the dendrite's body hash then covers no field, so the
    # sr25519 request signature does not protect the body. bittensor's axon compares the sender's hash with
    # one over its own class's fields, so declaring fields would make our miners refuse public validators and
    # public miners refuse our validator. On our own network every neuron agrees: see `sign_request_bodies`.
    required_hash_fields: ClassVar[tuple[str, ...]] = ()

    def get_required_fields(self) -> list[str]:
        """bittensor's, computed once per class: it builds the whole JSON schema on every call (about 5 ms, for
        every header set a dendrite or axon writes)."""
        return list(_schema_required(type(self)))

    def to_request_body(self) -> RequestBody:
        """Return the ten protocol fields: the `/rec` body, and what the request signature covers."""
        return {
            "created_at": self.created_at,
            "user": self.user,
            "num_results": self.num_results,
            "query": self.query,
            "context": self.context,
            "site_key": self.site_key,
            "results": self.results,
            "models_used": self.models_used,
            "miner_uid": self.miner_uid,
            "miner_hotkey": self.miner_hotkey,
        }

    def to_dict(self) -> dict[str, Any]:
        """Return the ten fields the way the public validator logs them: lists `str()`-ed, empty lists as None."""
        body: dict[str, Any] = dict(self.to_request_body())
        body["results"] = str(self.results) if self.results else None
        body["models_used"] = str(self.models_used) if self.models_used else None
        return body


@functools.cache
def _schema_required(cls: type[pydantic.BaseModel]) -> tuple[str, ...]:
    return tuple(cls.model_json_schema().get("required", []))


def parse_request(*, data: str | bytes | Mapping[str, Any]) -> BitrecsRequest:
    """Build a `BitrecsRequest` from the JSON a gateway, dendrite or axon sends (raw JSON or a decoded object).

    Validation and coercion are pydantic's lax mode, as in the public validator (`"3"` becomes 3 for
    `num_results`); a missing protocol key raises `pydantic.ValidationError`, JSON that is not an object or
    nests too deeply a ValueError.
    """
    if isinstance(data, str | bytes):
        data = parse_json(data)  # JsonIntakeError is a ValueError
        if not isinstance(data, dict):
            raise ValueError("a BitrecsRequest must be a JSON object")
    return BitrecsRequest.model_validate(dict(data))


def request_for_miners(*, request: BitrecsRequest) -> BitrecsRequest:
    """Return a copy safe to send through a dendrite: null string fields become `""` and null lists `[]`.

    bittensor leaves null fields out of the synapse headers, and the axon rebuilds the synapse
    from those headers first, so a null in any required field (e.g. `miner_uid` as a gateway
    may send it) makes every miner's axon refuse the call as malformed.
    """
    updates: dict[str, Any] = {}
    for name in REQUEST_FIELDS:
        if getattr(request, name) is None:
            updates[name] = [] if name in ("results", "models_used") else ""
    return request.model_copy(update=updates, deep=True)


def sign_request_bodies(enabled: bool) -> None:
    """Cover the ten protocol fields with the dendrite's sr25519 signature (`required_hash_fields`), or none.

    On for a network whose neurons are all ours (the local chain: `run_validator`/`run_miner --local-chain`),
    so a body altered in transit is refused by the axon. Off, the public synapse's behaviour, wherever public
    validators or miners may be on the other end (test, finney): their axons and dendrites hash no field.
    """
    BitrecsRequest.required_hash_fields = tuple(REQUEST_FIELDS) if enabled else ()
