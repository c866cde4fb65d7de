"""DRF's JSON parser on the one JSON normaliser (bitrecs_site.json_intake)."""

from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework.parsers import JSONParser

from bitrecs_site.json_intake import parse_json


class StrictJSONParser(JSONParser):
    """Parse a JSON request body with the service's intake rules; errors reach the error path as JsonIntakeError."""

    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        """Return the normalised body (UTF-8 only, no NaN, bounded depth and size)."""
        limit = settings.MAX_WEBHOOK_BODY_BYTES
        return parse_json(stream.read(limit + 1), max_bytes=limit)
