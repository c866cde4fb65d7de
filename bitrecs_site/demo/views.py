"""The demo storefront's pages (local mode only: every view answers 404 when DJANGO_DEBUG is off)."""

import functools
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from bitrecs_site.demo import selectors, services
from bitrecs_site.demo.placeholder import product_svg
from bitrecs_site.widget_asset import placement_classes, placement_skeleton, widget_css
from merchants.exceptions import InvalidRequest
from merchants.models import Store

CONSENT_COOKIE = "demo_consent"
LOCALE = "en-US"

View = Callable[..., HttpResponse]


def local_only(view: View) -> View:
    """404 outside local mode; 503 with what to run when the demo store was not seeded."""

    @functools.wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.LOCAL_MODE:
            raise Http404("The demo storefront runs in local mode only.")
        store = selectors.get_demo_store()
        if store is None:
            return render(request, "demo/not_seeded.html", status=503)
        return view(request, store, *args, **kwargs)

    return guarded


PLACEMENT_LIMIT = 4  # cards per demo placement


def money(value: Decimal | str | None) -> str:
    """A price as the demo shop shows it ($1,234.50)."""
    return "" if value is None or value == "" else f"${Decimal(value):,.2f}"


def _page(request: HttpRequest, template: str, context: dict[str, Any], *, status: int = 200) -> HttpResponse:
    consent = request.COOKIES.get(CONSENT_COOKIE)
    lines = services.cart_lines(session=request.session)
    base = {
        "site_key": selectors.DEMO_SITE_KEY,
        "currency": services.DEMO_CURRENCY,
        "locale": LOCALE,
        "consent": {"granted": True, "denied": False}.get(consent or ""),
        "cart_count": sum(line.quantity for line in lines),
        # ?bitrecs=off: the same page without the widget (the store without us), for the Lighthouse budget.
        "bitrecs_off": request.GET.get("bitrecs") == "off",
        # The placements' space is reserved in the HTML, styled by the widget's own CSS, so nothing shifts when
        # the deferred script swaps in the cards (it adds no second stylesheet when #bitrecs-css is there).
        "bitrecs_css": widget_css(),
        "skeletons": {
            "grid": placement_skeleton(limit=PLACEMENT_LIMIT),
            "grid_add": placement_skeleton(limit=PLACEMENT_LIMIT, add_to_cart=True),
            "row_add": placement_skeleton(limit=PLACEMENT_LIMIT, layout="row", add_to_cart=True),
        },
        "placement_classes": {"grid": placement_classes(), "row": placement_classes(layout="row")},
    }
    return render(request, template, {**base, **context}, status=status)


@require_GET
@local_only
def home(request: HttpRequest, store: Store) -> HttpResponse:
    """The shop's front page: a home placement and the catalog, a page at a time."""
    number = request.GET.get("page", "1")
    page = selectors.get_catalog_page(store=store, number=int(number) if number.isdigit() else 1)
    cards = [{"product": p, "price": money(p.price)} for p in page.products]
    return _page(request, "demo/home.html", {"page": page, "cards": cards, "pages": range(1, page.count + 1)})


@require_GET
@local_only
def product(request: HttpRequest, store: Store, handle: str) -> HttpResponse:
    """A product page with its cart form and the product placement."""
    item = selectors.get_demo_product(store=store, handle=handle)
    if item is None:
        raise Http404("No such product in the demo store.")
    variants = [
        {"variant": v, "price": money(v.price if v.price is not None else item.price)} for v in item.variants.all()
    ]
    context = {
        "product": item,
        "price": money(item.price),
        "variants": variants,
        "first_available": next((v for v in item.variants.all() if v.in_stock), None),
        "paragraphs": [p.strip() for p in item.description.split("\n") if p.strip()][:8],
    }
    return _page(request, "demo/product.html", context)


@require_GET
@never_cache
@local_only
def cart(request: HttpRequest, store: Store) -> HttpResponse:
    """The cart, its checkout button and the cart placement (complements of what is in it)."""
    lines = services.cart_lines(session=request.session)
    subtotal = sum((line.total for line in lines), Decimal("0.00"))
    rows = [
        {"index": i, "line": line, "price": money(line.price), "total": money(line.total)}
        for i, line in enumerate(lines)
    ]
    skus = [line.sku for line in reversed(lines) if line.sku]
    context = {"rows": rows, "subtotal": money(subtotal), "cart_skus": ",".join(dict.fromkeys(skus))}
    return _page(request, "demo/cart.html", context)


@csrf_exempt  # like Shopify's /cart/add: a storefront form with no token
@require_POST
@local_only
def cart_add(request: HttpRequest, store: Store) -> HttpResponse:
    """Add a variant (form field `id`, or `sku`) with `quantity` and `properties[...]`; JSON when asked for."""
    raw_id = request.POST.get("id", "").strip()
    if raw_id and not raw_id.isdigit():
        raise InvalidRequest("`id` must be a variant id from the product form.")
    variant = selectors.find_variant(
        store=store, variant_pk=int(raw_id) if raw_id else None, sku=request.POST.get("sku", "").strip()[:255]
    )
    if variant is None:
        raise InvalidRequest("No such product in the demo store; send the product form's `id` or a `sku`.")
    count = services.add_to_cart(
        session=request.session,
        variant=variant,
        quantity=services.parse_quantity(request.POST.get("quantity")),
        properties=services.parse_line_properties(request.POST),
    )
    services.update_cart_attributes(session=request.session, attributes=services.parse_cart_attributes(request.POST))
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"item_count": count})
    return HttpResponseRedirect(reverse("demo:cart"))


@csrf_exempt
@require_POST
@local_only
def cart_remove(request: HttpRequest, store: Store) -> HttpResponse:
    """Remove one cart line (form field `line`, its 0-based index)."""
    index = request.POST.get("line", "")
    if not index.isdigit():
        raise InvalidRequest("`line` must be the index of a cart line.")
    services.remove_from_cart(session=request.session, index=int(index))
    return HttpResponseRedirect(reverse("demo:cart"))


@csrf_exempt
@require_POST
@local_only
def checkout(request: HttpRequest, store: Store) -> HttpResponse:
    """Place the order: Shopify's signed orders/create webhook goes to our own endpoint; then the thank-you page."""
    if not services.cart_lines(session=request.session):
        return HttpResponseRedirect(reverse("demo:cart"))
    services.checkout(session=request.session)
    return HttpResponseRedirect(reverse("demo:thanks"))


@require_GET
@never_cache
@local_only
def thanks(request: HttpRequest, store: Store) -> HttpResponse:
    """What the last checkout did: the order, its lines with their rec ids, and how the webhook went."""
    order = services.last_order(session=request.session)
    if order is None:
        return HttpResponseRedirect(reverse("demo:cart"))
    rows = [{"line": line, "total": money(line.total)} for line in order.lines]
    now = int(time.time())
    context = {
        "order": order,
        "rows": rows,
        "subtotal": money(order.subtotal),
        "stats_from": now - 3600,
        "stats_to": now,
    }
    return _page(request, "demo/thanks.html", context)


@require_GET
@local_only
def image(request: HttpRequest, store: Store, handle: str) -> HttpResponse:
    """A product's drawn picture (SVG), cached for a day."""
    item = selectors.get_demo_product(store=store, handle=handle)
    if item is None:
        raise Http404("No such product in the demo store.")
    response = HttpResponse(product_svg(title=item.title, kind=item.product_type), content_type="image/svg+xml")
    response["Cache-Control"] = "public, max-age=86400"
    return response
