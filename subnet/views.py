"""HTTP endpoints the validators call on the gateway (BITRECS_PROTOCOL.md §1.12), and our probe endpoint."""

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from bittensor_wallet import Keypair
from django.http import HttpResponse
from django.utils.cache import patch_cache_control
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bitrecs_site.exception_handler import ErrorSerializer
from subnet.keys import get_public_key_hex, get_signing_key
from subnet.probes import MAX_PROBE_CASES, draw_probe_cases
from subnet.selectors import list_probe_hotkeys
from subnet.services import new_request_rng
from subnet.signing import SignatureError, check_timestamp, probe_request_message, probe_response_message
from subnet.stats import MAX_ACTIONS, list_miner_actions
from subnet.types import ActionType

# Validators fetch the key once at start-up; a short cache keeps a key rotation visible within minutes.
PUBLIC_KEY_MAX_AGE_SECONDS = 300
# Validators ask for 30-day windows ([now-60 d, now-30 d]); a longer one is refused rather than scanned.
MAX_STATS_WINDOW: Final = timedelta(days=120)
# 3000-01-01T00:00:00Z: far beyond any event, and well inside what datetime can represent.
MAX_UNIX_SECONDS: Final = 32_503_680_000


class PublicKeyView(APIView):
    """`GET /subnet/public_key`: the raw Ed25519 public key that verifies the gateway's `/rec` signatures."""

    authentication_classes = []
    permission_classes = []

    @extend_schema(
        operation_id="subnet_public_key",
        responses=inline_serializer("PublicKey", {"public_key": serializers.CharField(help_text="64 hex characters.")}),
    )
    def get(self, request: Request) -> Response:
        response = Response({"public_key": get_public_key_hex()})
        patch_cache_control(response, public=True, max_age=PUBLIC_KEY_MAX_AGE_SECONDS)
        return response


class MinerActionSerializer(serializers.Serializer):
    """Documents one element of the miner stats list (the upstream `UserAction`); the view builds the dicts."""

    ip = serializers.CharField(help_text='Always "": no customer data is stored.')
    site_info = serializers.CharField(help_text="The store's site key.")
    user = serializers.CharField(help_text='Always "": visitors are anonymous.')
    action = serializers.ChoiceField(choices=[(a.value, a.value) for a in ActionType])
    sku = serializers.CharField(help_text="The SKU bought or viewed, or the product's platform id when it has none.")
    hot_key = serializers.CharField(help_text="ss58 hotkey of the miner whose recommendation led to the action.")
    created_at = serializers.CharField(help_text='When the action happened, UTC, e.g. "2025-06-28T20:00:00Z".')


class MinerStatsView(APIView):
    """`GET /subnet/miner/stats/from/<from>/to/<to>`: storefront actions attributed to miners, for validators.

    `from` and `to` are unix seconds, both included: an action counts when its time, to the second, lies in
    [from, to]. The window is at most 120 days. The list is oldest first and holds at most 50,000 actions; when
    the window has more, the oldest 50,000 are returned with the header `X-Truncated: true`.
    """

    authentication_classes = []
    permission_classes = []
    renderer_classes = [JSONRenderer]

    class InputSerializer(serializers.Serializer):
        def get_fields(self) -> dict[str, serializers.Field]:
            # "from" is a Python keyword, so the fields cannot be declared as class attributes.
            return {name: serializers.IntegerField(min_value=0, max_value=MAX_UNIX_SECONDS) for name in ("from", "to")}

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            start, end = attrs["from"], attrs["to"]
            if start > end:
                raise serializers.ValidationError({"window": f"from ({start}) is after to ({end})."})
            if end - start > MAX_STATS_WINDOW.total_seconds():
                days = MAX_STATS_WINDOW.days
                raise serializers.ValidationError({"window": f"The window is longer than {days} days."})
            return attrs

    @extend_schema(
        operation_id="subnet_miner_stats",
        summary="Storefront actions attributed to miners, in a window of unix seconds",
        parameters=[
            OpenApiParameter(
                "from", OpenApiTypes.INT, OpenApiParameter.PATH, description="Window start, unix seconds, included."
            ),
            OpenApiParameter(
                "to", OpenApiTypes.INT, OpenApiParameter.PATH, description="Window end, unix seconds, included."
            ),
        ],
        responses={
            200: OpenApiResponse(
                MinerActionSerializer(many=True),
                description=f"Oldest first, at most {MAX_ACTIONS}; `X-Truncated: true` when the window held more.",
            ),
            400: OpenApiResponse(
                ErrorSerializer,
                description="from or to is not an integer, is negative or past the year 3000, from is after to, "
                "or the window is longer than 120 days.",
            ),
            404: OpenApiResponse(ErrorSerializer, description="from or to is empty (no such path)."),
        },
    )
    def get(self, request: Request, **window: str) -> Response:
        params = self.InputSerializer(data=window)
        params.is_valid(raise_exception=True)
        start = datetime.fromtimestamp(params.validated_data["from"], tz=UTC)
        # Whole seconds, both ends included: everything before the second after `to`.
        end = datetime.fromtimestamp(params.validated_data["to"], tz=UTC) + timedelta(seconds=1)
        page = list_miner_actions(start=start, end=end)
        response = Response([action.as_wire() for action in page.actions])
        if page.is_truncated:
            response["X-Truncated"] = "true"
        return response


_HEX_RE: Final = re.compile(r"(0x)?[0-9a-fA-F]{128}")


def _refused(status: int, error: str, detail: str) -> HttpResponse:
    return HttpResponse(json.dumps({"error": error, "detail": detail}), status=status, content_type="application/json")


class ProbeCasesView(APIView):
    """`GET /subnet/validator/probes?count=N`: ground-truth cases for a registered validator (ours, not public).

    The caller signs `subnet.signing.probe_request_message` with its hotkey (sr25519) and sends
    `x-hotkey`, `x-timestamp` (unix seconds, at most 300 s old) and `x-signature` (hex). Only the validators of
    the gateway's network get cases (the local chain's, or the metagraph's with a permit): a miner must never
    see what shoppers bought. The answer `{"cases": [...]}` carries `x-signature`, the gateway's Ed25519
    signature (its `/public_key` key) of `probe_response_message` over the body as sent. Every call draws a
    fresh random sample (rotation).
    """

    authentication_classes = []
    permission_classes = []

    @extend_schema(exclude=True)  # between our gateway and our validators only: not part of the public API
    def get(self, request: Request) -> HttpResponse:
        hotkey = request.headers.get("x-hotkey", "")
        timestamp = request.headers.get("x-timestamp", "")
        signature = request.headers.get("x-signature", "")
        raw_count = request.query_params.get("count", "10")
        if not raw_count.isdigit() or not 0 < int(raw_count) <= MAX_PROBE_CASES:
            return _refused(400, "invalid_count", f"count must be an integer from 1 to {MAX_PROBE_CASES}.")
        try:
            check_timestamp(timestamp=timestamp)
        except SignatureError as exc:
            return _refused(401, "bad_timestamp", f"{exc}; sign a fresh request.")
        if not hotkey or not _HEX_RE.fullmatch(signature):
            return _refused(401, "unsigned", "Send x-hotkey and x-signature (hex of the sr25519 signature).")
        message = probe_request_message(timestamp=timestamp, hotkey=hotkey, path=request.get_full_path())
        try:
            signed = Keypair(ss58_address=hotkey).verify(message, bytes.fromhex(signature.removeprefix("0x")))
        except (ValueError, TypeError):
            signed = False
        if not signed:
            return _refused(401, "bad_signature", "x-signature does not verify for x-hotkey over this request.")
        if hotkey not in list_probe_hotkeys():
            return _refused(403, "not_a_validator", "Only registered validators of this network get probes.")
        cases = draw_probe_cases(count=int(raw_count), rng=new_request_rng())
        body = json.dumps({"cases": [case.as_wire() for case in cases]}, separators=(",", ":")).encode()
        response = HttpResponse(body, content_type="application/json")
        key = get_signing_key()
        response["x-signature"] = key.sign(probe_response_message(timestamp=timestamp, hotkey=hotkey, body=body)).hex()
        response["Cache-Control"] = "no-store"
        return response
