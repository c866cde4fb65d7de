"""The portal's navigation: the pages of a store, and the pages for miners and validators, in one list each."""

from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from portal.access import signed_in_hotkey

# (label, URL name) of a store's pages, in menu order; a page whose route does not exist is left out.
STORE_PAGES = [
    ("Overview", "portal-store"),
    ("Analytics", "portal-analytics"),
    ("Experiments", "portal-experiments"),
    ("Settings", "portal-settings"),
    ("Why this list", "portal-why"),
]
# (label, URL name) of the pages for the subnet's people, without arguments.
NETWORK_PAGES = [
    ("Leaderboard", "portal-leaderboard"),
    ("My hotkey", "portal-neuron"),
]


def _link(label: str, name: str, *args: Any) -> dict[str, str] | None:
    try:
        return {"label": label, "name": name, "url": reverse(name, args=args)}
    except NoReverseMatch:
        return None


def portal_navigation(request: HttpRequest) -> dict[str, Any]:
    """Template context: `portal_store_pages` for the store being viewed, and `portal_network_pages`."""
    match = getattr(request, "resolver_match", None)
    if match is None or not (request.path_info or "").startswith("/portal"):
        return {}
    store_id = match.kwargs.get("store_id")
    store_pages = []
    if store_id is not None:
        store_pages = [link for label, name in STORE_PAGES if (link := _link(label, name, store_id))]
    network_pages = [link for label, name in NETWORK_PAGES if (link := _link(label, name))]
    if request.user.is_authenticated and signed_in_hotkey(request) is None:
        # A merchant (or staff) session has no hotkey of its own: "My hotkey" would only offer another sign-in.
        network_pages = [link for link in network_pages if link["name"] != "portal-neuron"]
    return {
        "portal_store_pages": store_pages,
        "portal_network_pages": network_pages,
        "portal_current": match.url_name,
    }
