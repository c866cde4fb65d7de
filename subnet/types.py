"""Wire shapes of the Bitrecs v1 `/rec` request that need no bittensor import.

The gateway builds, signs and sends request bodies with these alone; only the
reference neurons import `subnet.protocol` (and with it bittensor).
"""

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, TypedDict

from bitrecs_site.json_intake import parse_json

# The ten protocol fields of `BitrecsRequest`, in the order the public synapse declares them.
REQUEST_FIELDS: Final[tuple[str, ...]] = (
    "created_at",
    "user",
    "num_results",
    "query",
    "context",
    "site_key",
    "results",
    "models_used",
    "miner_uid",
    "miner_hotkey",
)

# Format of `created_at` in the reference gateway, validator and miner (UTC, no offset, no fraction).
CREATED_AT_FORMAT: Final = "%Y-%m-%dT%H:%M:%S"

# Bounds the public validator enforces on a request (`bitrecs/utils/constants.py`, 0.8.3).
MIN_QUERY_LENGTH: Final = 3
MAX_QUERY_LENGTH: Final = 40
MIN_NUM_RESULTS: Final = 1
MAX_NUM_RESULTS: Final = 20


class RequestBody(TypedDict):
    """The JSON body of `POST /rec`: exactly the ten protocol fields, all keys always present."""

    created_at: str | None
    user: str | None
    num_results: int
    query: str | None
    context: str | None
    site_key: str | None
    results: list[Any] | None
    models_used: list[Any] | None
    miner_uid: str | None
    miner_hotkey: str | None


def format_created_at(*, when: datetime) -> str:
    """Return an aware datetime as the protocol's `created_at` string, in UTC."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("created_at needs an aware datetime")
    return when.astimezone(UTC).strftime(CREATED_AT_FORMAT)


def build_request_body(
    *,
    query: str,
    context: str,
    site_key: str,
    num_results: int,
    created_at: str,
    user: str = "",
) -> RequestBody:
    """Return the body a gateway sends to a validator's `/rec`, refusing values the validator would reject.

    `results` and `models_used` are always `[]`: a public validator that receives `null`
    lists fails later in its main loop and stalls for 60 s (BITRECS_PROTOCOL.md §1.7).
    `miner_uid` and `miner_hotkey` are `""`, not `null`: the validator forwards the body
    to miners unchanged, bittensor leaves null fields out of the synapse headers, and the
    miner's axon then refuses the request because those keys are required.
    """
    if not MIN_QUERY_LENGTH <= len(query) <= MAX_QUERY_LENGTH:
        raise ValueError(f"query must be {MIN_QUERY_LENGTH} to {MAX_QUERY_LENGTH} characters long")
    if isinstance(num_results, bool) or not MIN_NUM_RESULTS <= num_results <= MAX_NUM_RESULTS:
        raise ValueError(f"num_results must be an integer from {MIN_NUM_RESULTS} to {MAX_NUM_RESULTS}")
    if not context:
        raise ValueError("context must be a non-empty JSON array string")
    if not site_key:
        raise ValueError("site_key must not be empty")
    return {
        "created_at": created_at,
        "user": user,
        "num_results": num_results,
        "query": query,
        "context": context,
        "site_key": site_key,
        "results": [],
        "models_used": [],
        "miner_uid": "",
        "miner_hotkey": "",
    }


def encode_result(*, item: Mapping[str, Any]) -> str:
    """Return one recommendation as the compact JSON string a miner puts in `results`."""
    return json.dumps(dict(item), separators=(",", ":"))


def decode_results(*, results: Sequence[Any]) -> list[dict[str, Any]]:
    """Parse a miner's `results` strictly, as the public validator does before answering `/rec`.

    Raises `ValueError` if an element is not a string holding one JSON object.
    """
    decoded: list[dict[str, Any]] = []
    for index, raw in enumerate(results):
        if not isinstance(raw, str):
            raise ValueError(f"results[{index}] is not a string")
        item = parse_json(raw)  # JsonIntakeError (bad JSON, NaN, too deep) is a ValueError
        if not isinstance(item, dict):
            raise ValueError(f"results[{index}] is not a JSON object")
        decoded.append(item)
    return decoded


class ActionType(StrEnum):
    """The storefront actions attributed to miners (upstream `ActionType`): the gateway's stats endpoint lists
    them and the validator weighs them for conversion scores."""

    VIEW_PRODUCT = "VIEW_PRODUCT"
    ADD_TO_CART = "ADD_TO_CART"
    PURCHASE = "PURCHASE"
