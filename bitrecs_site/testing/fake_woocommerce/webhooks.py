"""Webhook deliveries as WC_Webhook sends them, and transports that deliver a POST to our app."""

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from bitrecs_site.testing.fake_woocommerce.wire import HOOKSHOT_USER_AGENT, webhook_signature, wp_json_encode

# A transport delivers one POST (url, body, headers) and returns the HTTP status it got.
Transport = Callable[[str, bytes, dict[str, str]], int]


@dataclass(frozen=True)
class Delivery:
    """One webhook request as WooCommerce would send it."""

    body: bytes
    headers: dict[str, str]
    content_type: str = "application/json"


def build_webhook_delivery(
    *,
    topic: str,
    payload: Any,
    secret: str | None,
    webhook_id: int = 7,
    delivery_id: str | None = None,
    source: str = "https://shop.example/",
    signature: str | None = None,
) -> Delivery:
    """The request WC_Webhook::deliver() sends; `signature` overrides the computed one, `secret=None` omits it."""
    body = wp_json_encode(payload)
    resource, _, event = topic.partition(".")
    headers = {
        "User-Agent": HOOKSHOT_USER_AGENT,
        "X-WC-Webhook-Source": source,
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-ID": str(webhook_id),
        # wp_hash(webhook id . current second): an md5-length hex string.
        "X-WC-Webhook-Delivery-ID": delivery_id or hashlib.md5(f"{webhook_id}{time.time()}".encode()).hexdigest(),  # noqa: S324
    }
    if signature is not None:
        headers["X-WC-Webhook-Signature"] = signature
    elif secret is not None:
        headers["X-WC-Webhook-Signature"] = webhook_signature(body, secret)
    return Delivery(body=body, headers=headers)


def build_ping(*, webhook_id: int = 7) -> Delivery:
    """The unsigned ping WC_Webhook::deliver_ping() sends when a webhook is saved."""
    return Delivery(
        body=f"webhook_id={webhook_id}".encode(),
        headers={"User-Agent": HOOKSHOT_USER_AGENT},
        content_type="application/x-www-form-urlencoded",
    )


def send_delivery(client: Any, url: str, delivery: Delivery) -> Any:
    """POST a delivery to our app through the Django test client; returns the response."""
    return client.generic(
        "POST",
        urlsplit(url).path or url,
        delivery.body,
        content_type=delivery.content_type,
        headers=delivery.headers,
    )


@dataclass
class DjangoClientTransport:
    """A Transport that posts to the path of the URL through the Django test client, keeping the responses."""

    client: Any
    responses: list[Any] = field(default_factory=list)

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        extra = {name: value for name, value in headers.items() if name.lower() != "content-type"}
        response = self.client.generic(
            "POST", urlsplit(url).path, body, content_type=headers.get("Content-Type", ""), headers=extra
        )
        self.responses.append(response)
        return int(response.status_code)


def http_transport(url: str, body: bytes, headers: dict[str, str]) -> int:
    """A Transport over real HTTP, for a running server (e.g. pytest-django's live_server)."""
    return requests.post(url, data=body, headers=headers, timeout=60, allow_redirects=False).status_code
