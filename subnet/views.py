"""HTTP endpoints the validators call on the gateway (BITRECS_PROTOCOL.md §1.12)."""

from datetime import UTC, datetime, timedelta
from typing import Any, Final

from django.utils.cache import patch_cache_control
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from recommendations.views.widget import ErrorSerializer
from subnet.keys import get_public_key_hex
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
