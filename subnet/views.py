"""HTTP endpoints the validators call on the gateway (BITRECS_PROTOCOL.md §1.12)."""

from django.utils.cache import patch_cache_control
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from subnet.keys import get_public_key_hex

# Validators fetch the key once at start-up; a short cache keeps a key rotation visible within minutes.
PUBLIC_KEY_MAX_AGE_SECONDS = 300


class PublicKeyView(APIView):
    """`GET /subnet/public_key`: the raw Ed25519 public key that verifies the gateway's `/rec` signatures."""

    authentication_classes = []
    permission_classes = []

    def get(self, request: Request) -> Response:
        response = Response({"public_key": get_public_key_hex()})
        patch_cache_control(response, public=True, max_age=PUBLIC_KEY_MAX_AGE_SECONDS)
        return response
