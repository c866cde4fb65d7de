"""The widget's event intake in the OpenAPI schema: POST /api/v1/events is a plain Django view (for its speed), which
drf-spectacular cannot see, so this hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]) writes its operation from
the intake's own checks (recommendations.services.events): the same limits, patterns and choices, so the document
and the endpoint cannot drift apart (bitrecs_site/tests/test_schema_fuzz.py holds the endpoint to it)."""

from typing import Any

from recommendations.models import (
    EVENT_ID_MAX_LENGTH,
    REC_ID_MAX_LENGTH,
    SESSION_ID_MAX_LENGTH,
    Arm,
    EventType,
    Placement,
)
from recommendations.services.events import MAX_BATCH_BYTES, MAX_EVENTS, SITE_KEY_MAX_LENGTH, SKU_MAX_LENGTH

EVENTS_PATH = "/api/v1/events"
# The times the intake accepts: 2000-01-01 to 2100-01-01, in milliseconds.
_EARLIEST_MS, _LATEST_MS = 946_684_800_000, 4_102_444_800_000


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EventIntakeError"}}},
    }


def _operation() -> dict[str, Any]:
    event = {
        "type": "object",
        "required": ["event_id", "type", "ts", "sku"],
        "properties": {
            "event_id": {
                "type": "string",
                "pattern": rf"^[A-Za-z0-9_.:-]{{1,{EVENT_ID_MAX_LENGTH}}}$",
                "description": "Unique per event; a repeat (a resent batch) is kept once.",
            },
            "type": {"type": "string", "enum": list(EventType.values)},
            "ts": {
                "description": "When it happened: milliseconds since 1970 (Date.now()) or ISO 8601 with an offset.",
                "oneOf": [
                    {"type": "number", "minimum": _EARLIEST_MS, "maximum": _LATEST_MS},
                    {"type": "string", "format": "date-time", "maxLength": 40},
                ],
            },
            "sku": {
                "type": "string",
                "minLength": 1,
                "maxLength": SKU_MAX_LENGTH,
                "pattern": r"^[^\x00-\x1f\x7f]*[^\x00-\x20\x7f][^\x00-\x1f\x7f]*$",
                "description": "The product's SKU, as the widget's answer gave it (printable, not only spaces).",
            },
            "rec_id": {
                "type": "string",
                "pattern": rf"^([A-Za-z0-9_-]{{1,{REC_ID_MAX_LENGTH}}})?$",
                "description": "The rec_id of the card the event is about (attribution), if any.",
            },
            "placement": {"type": "string", "enum": ["", *Placement.values]},
            "arm": {"type": "string", "enum": ["", *Arm.values], "description": "The answer's experiment arm."},
            "session_id": {
                "type": "string",
                "pattern": rf"^([A-Za-z0-9_-]{{8,{SESSION_ID_MAX_LENGTH}}})?$",
                "description": "The consenting shopper's random session id (sid); leave it out without consent.",
            },
        },
    }
    batch = {
        "type": "object",
        "required": ["site_key", "events"],
        "properties": {
            "site_key": {"type": "string", "pattern": rf"^[A-Za-z0-9_-]{{1,{SITE_KEY_MAX_LENGTH}}}$"},
            "events": {"type": "array", "minItems": 1, "maxItems": MAX_EVENTS, "items": event},
        },
    }
    return {
        "operationId": "events_create",
        "summary": "Send a batch of widget events",
        "description": (
            "The widget's impressions, clicks, add-to-carts and purchases, sent with navigator.sendBeacon as "
            f"text/plain (or application/json): at most {MAX_EVENTS} events and {MAX_BATCH_BYTES} bytes a batch. "
            "Accepted batches are spooled and written within a minute. Rate limited per client IP and site key."
        ),
        "tags": ["events"],
        "security": [],
        "requestBody": {
            "required": True,
            "content": {"text/plain": {"schema": batch}, "application/json": {"schema": batch}},
        },
        "responses": {
            "204": {"description": "Accepted."},
            "400": _error("Not a batch; the message names the field."),
            "404": _error("No store has this site key."),
            "413": _error(f"Over {MAX_BATCH_BYTES} bytes."),
            "415": _error("Another content type."),
            "429": _error("Rate limited; see Retry-After."),
            "503": _error("The batch could not be kept; send it again later."),
        },
    }


def add_event_intake(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: add POST /api/v1/events and its error schema."""
    result.setdefault("paths", {})[EVENTS_PATH] = {"post": _operation()}
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["EventIntakeError"] = {
        "type": "object",
        "required": ["error", "detail"],
        "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
    }
    return result
