"""Who may see what in the portal: signed-in merchants see their own stores; everything else is a 404."""

import functools
from collections.abc import Callable
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse

from merchants.models import Store
from merchants.selectors import get_store_for_user
from subnet.signin import HOTKEY_USERNAME_PREFIX

View = Callable[..., HttpResponse]

# The session keys of a hotkey sign-in (portal.views.hotkey writes them).
SESSION_HOTKEY = "portal_hotkey"
SESSION_ROLE = "portal_hotkey_role"


def signed_in_hotkey(request: HttpRequest) -> str | None:
    """The hotkey this session signed in with (the session's user must be that hotkey's account), or None."""
    hotkey = request.session.get(SESSION_HOTKEY)
    user = request.user
    if not isinstance(hotkey, str) or not user.is_authenticated:
        return None
    return hotkey if user.get_username() == f"{HOTKEY_USERNAME_PREFIX}{hotkey}" else None


def merchant_required(view: View) -> View:
    """Send a visitor who is not signed in as a merchant (or staff) to the portal's sign-in page."""

    @functools.wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return guarded


def store_for(request: HttpRequest, store_id: int) -> Store:
    """The signed-in user's store `store_id`; another tenant's store and a missing one are the same 404."""
    try:
        return get_store_for_user(user=request.user, store_id=store_id)
    except Store.DoesNotExist:
        raise Http404("No such store in your account.") from None


def store_view(view: Callable[..., HttpResponse]) -> View:
    """A merchant page of one store: signed in, the store scoped to the user, passed to the view as `store`."""

    @merchant_required
    @functools.wraps(view)
    def scoped(request: HttpRequest, store_id: int, *args: Any, **kwargs: Any) -> HttpResponse:
        return view(request, store_for(request, store_id), *args, **kwargs)

    return scoped
