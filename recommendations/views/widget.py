"""The widget's HTTP API: GET /api/v1/recommendations."""

import functools
import hashlib
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseNotModified, QueryDict
from django.utils.http import parse_etags
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import UnsupportedMediaType, ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from bitrecs_site.exception_handler import ErrorSerializer
from bitrecs_site.query_params import repeated_parameters
from bitrecs_site.security import client_ip, rate_setting
from merchants.exceptions import StoreNotFound
from recommendations import process_state
from recommendations.experiments import get_arm, get_widget_settings
from recommendations.models import Arm, Placement, Source
from recommendations.selectors import ServingStore, get_recommendations, get_serving_store, is_origin_allowed
from recommendations.shared_answers import SharedAnswer, get_shared_answers

MAX_LIMIT = 20
DEFAULT_LIMIT = 4
MAX_SESSION_SKUS = 20
# Past this many characters of query the widget asks with POST (most servers refuse request lines over 4-8 KB).
MAX_GET_QUERY = 1800
SKU_MAX_LENGTH = 255
SITE_KEY_MAX_LENGTH = 64
_SITE_KEY_SHAPE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SESSION_ID_SHAPE = r"^[A-Za-z0-9_-]{8,64}$"
_SESSION_ID = re.compile(SESSION_ID_SHAPE)
# The endpoint's route (recommendations/urls.py; the app's URLs are included at the root). WidgetAnswerMiddleware
# serves fresh cached answers on this path before the URL resolver runs.
WIDGET_PATH = "api/v1/recommendations"
# The methods DRF lists in the Allow header of the view's answers.
ALLOW = "GET, POST, HEAD, OPTIONS"


def _rate(setting: str) -> str | None:
    if rate_setting(settings.WIDGET_RATE_LIMIT) is None:
        return None  # load tests switch every widget limit off with this one variable
    return rate_setting(getattr(settings, setting))


class WidgetClientRateThrottle(SimpleRateThrottle):
    """WIDGET_RATE_LIMIT per client IP (REMOTE_ADDR; X-Forwarded-For only through WIDGET_TRUSTED_PROXIES)."""

    scope = "widget_client"

    def get_rate(self) -> str | None:
        return _rate("WIDGET_RATE_LIMIT")

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": client_ip(request)}


class WidgetSiteRateThrottle(SimpleRateThrottle):
    """WIDGET_SITE_RATE_LIMIT per site key: all of a store's shoppers together."""

    scope = "widget_site"

    def get_rate(self) -> str | None:
        return _rate("WIDGET_SITE_RATE_LIMIT")

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        site_key = request.GET.get("site_key", "")  # a DRF Request or, on a cached answer, Django's
        if not site_key and request.method == "POST":  # the form of a long session (RecommendationsView.post)
            form = getattr(request, "_request", request).POST
            site_key = form.get("site_key", "") if isinstance(form, QueryDict) else ""
        if not _SITE_KEY_SHAPE.match(site_key):
            return None  # not a site key: the request is refused with 400/404 anyway
        return self.cache_format % {"scope": self.scope, "ident": site_key}


WIDGET_THROTTLES: tuple[type[SimpleRateThrottle], ...] = (WidgetSiteRateThrottle, WidgetClientRateThrottle)


class SkuListField(serializers.CharField):
    """Comma-separated SKUs, most recent first: at most MAX_SESSION_SKUS, each at most SKU_MAX_LENGTH long."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=MAX_SESSION_SKUS * (SKU_MAX_LENGTH + 1), allow_blank=True, **kwargs)

    def to_internal_value(self, data: Any) -> list[str]:  # type: ignore[override]
        text = super().to_internal_value(data)
        if "\x00" in text:  # checked here: DRF's null-character validator only sees the parsed list
            raise serializers.ValidationError("Null characters are not allowed.")
        skus = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
        if len(skus) > MAX_SESSION_SKUS:
            raise serializers.ValidationError(f"At most {MAX_SESSION_SKUS} SKUs.")
        if any(len(sku) > SKU_MAX_LENGTH for sku in skus):
            raise serializers.ValidationError(f"A SKU is at most {SKU_MAX_LENGTH} characters.")
        return skus


class RecommendationsView(APIView):
    """Recommendations for the storefront widget, answered from stored lists in a few milliseconds.

    Query parameters other than those below are ignored (cache busters, tracking parameters).
    """

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    renderer_classes = [JSONRenderer]
    throttle_classes = list(WIDGET_THROTTLES)

    def check_throttles(self, request: Request) -> None:
        """DRF's rate limits, unless the fast path or the middleware counted this request and handed it on (bad
        input, a failure): each request counts once."""
        if request.META.get(RATE_LIMITS_COUNTED):
            return
        super().check_throttles(request)

    class InputSerializer(serializers.Serializer):
        site_key = serializers.CharField(max_length=SITE_KEY_MAX_LENGTH, help_text="The store's public site key.")
        sku = serializers.CharField(
            max_length=SKU_MAX_LENGTH,
            required=False,
            allow_blank=True,
            default="",
            help_text="The query product's SKU (or its platform id); required for placement=product. "
            "An unknown SKU is answered with the store's home list.",
        )
        placement = serializers.ChoiceField(
            choices=Placement.choices,
            default=Placement.PRODUCT,
            help_text="product: goes with / similar; cart: complements the cart; home: bestsellers and trending.",
        )
        limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)
        cart = SkuListField(required=False, default=list, help_text="SKUs in the cart, comma-separated.")
        viewed = SkuListField(
            required=False, default=list, help_text="Recently viewed SKUs, most recent first, comma-separated."
        )
        sid = serializers.RegexField(
            SESSION_ID_SHAPE,
            required=False,
            allow_blank=True,
            default="",
            help_text="The widget's anonymous session id, sent only after consent: it picks the experiment arm.",
        )

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if attrs["placement"] == Placement.PRODUCT and not attrs["sku"]:
                raise serializers.ValidationError({"sku": "This field is required when placement is product."})
            return attrs

    class OutputSerializer(serializers.Serializer):
        class ItemSerializer(serializers.Serializer):
            sku = serializers.CharField()
            name = serializers.CharField()
            price = serializers.CharField(allow_null=True, help_text='Decimal as a string, e.g. "19.99".')
            url = serializers.CharField()
            image = serializers.CharField()
            rec_id = serializers.CharField(allow_null=True, help_text="The list this item came from (its card's id).")
            source = serializers.CharField(help_text='"network" or "local" ("" for a pinned item).')  # type: ignore[assignment]

        class SettingsSerializer(serializers.Serializer):
            title = serializers.CharField()
            layout = serializers.ChoiceField(choices=["grid", "row"])
            count = serializers.IntegerField()
            anonymous_events = serializers.BooleanField()

        rec_id = serializers.CharField(
            allow_null=True, help_text="Send back with widget events to attribute them to this list."
        )
        # A declared field named "source" is collected by the serializer metaclass; the stubs see Field.source.
        source = serializers.ChoiceField(choices=Source.choices)  # type: ignore[assignment]
        placement = serializers.ChoiceField(choices=Placement.choices)
        arm = serializers.ChoiceField(
            choices=Arm.choices, allow_null=True, help_text="The experiment arm; null outside one (or without consent)."
        )
        settings = SettingsSerializer()
        currency = serializers.CharField(help_text='ISO 4217 code ("" when unknown).')
        locale = serializers.CharField(help_text='BCP 47 tag ("" when unknown: use the page\'s).')
        items = ItemSerializer(many=True)

    @extend_schema(
        operation_id="recommendations",
        summary="Recommendations for a product page, cart or home page",
        parameters=[InputSerializer],
        responses={
            200: OutputSerializer,
            304: OpenApiResponse(description="Not modified (If-None-Match matched the ETag)."),
            400: OpenApiResponse(ErrorSerializer, description="A parameter is missing or out of bounds."),
            404: OpenApiResponse(ErrorSerializer, description="No store has this site key."),
            429: OpenApiResponse(OpenApiTypes.OBJECT, description="Rate limited; see Retry-After."),
        },
    )
    def get(self, request: Request) -> HttpResponseBase:
        answer = _render(request.query_params)
        remember_answer(query=request.query_params, answer=answer)
        return _respond(request, answer)

    @extend_schema(
        operation_id="recommendations_form",
        summary="The same recommendations, asked with a form body (for a session too long for a URL)",
        description=(
            "The parameters of the GET, as an application/x-www-form-urlencoded body (a CORS simple request: no "
            f"preflight). The widget posts when its query would pass {MAX_GET_QUERY} characters: a full cart and "
            "viewed list (20 SKUs each, up to 255 characters) cannot fit the request line of common servers."
        ),
        request={"application/x-www-form-urlencoded": InputSerializer},
        responses={
            200: OutputSerializer,
            400: OpenApiResponse(ErrorSerializer, description="A parameter is missing, repeated or out of bounds."),
            404: OpenApiResponse(ErrorSerializer, description="No store has this site key."),
            415: OpenApiResponse(ErrorSerializer, description="The body is not a form."),
            429: OpenApiResponse(OpenApiTypes.OBJECT, description="Rate limited; see Retry-After."),
        },
    )
    def post(self, request: Request) -> HttpResponseBase:
        form = _form_body(request)
        return _respond(request, _render(form))

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        if response.status_code >= 400:
            # Errors carry nothing store-specific: any page may read them (the widget shows why it is empty).
            response["Cache-Control"] = "no-store"
            if request.headers.get("Origin"):
                response["Access-Control-Allow-Origin"] = "*"
                response["Access-Control-Expose-Headers"] = "Retry-After"
        return super().finalize_response(request, response, *args, **kwargs)


def _form_body(request: Request) -> QueryDict:
    """The POSTed form, each parameter once; 415 for another content type, 400 for a repeated parameter."""
    django_request = request._request
    if django_request.content_type != "application/x-www-form-urlencoded":
        raise UnsupportedMediaType(
            django_request.content_type or "none",
            detail="Send the parameters as an application/x-www-form-urlencoded body (or use GET).",
        )
    form = django_request.POST
    repeated = repeated_parameters(params=form)
    if repeated:
        raise ValidationError({name: ["Give this parameter once."] for name in repeated})
    return form


@functools.cache
def _input_serializer() -> serializers.Serializer:
    # One bound instance per process: run_validation keeps no state on it, and a new instance per request would
    # deep-copy its six fields every time (a quarter of the cost of an uncached answer).
    return RecommendationsView.InputSerializer()


def _validate_input(query: QueryDict) -> dict[str, Any]:
    """The validated parameters; raises ValidationError (400 with every field's message) like is_valid() does."""
    data = plain_input(query=query)
    return data if data is not None else dict(_input_serializer().run_validation(query))


_PLACEMENTS = frozenset(Placement.values)
_LIMIT_SHAPE = re.compile(r"[1-9][0-9]?")


def plain_input(*, query: Mapping[str, str]) -> dict[str, Any] | None:
    """What the InputSerializer returns for a request whose parameters are all in their plain form (a site key's
    shape, a trimmed SKU, a placement, a limit in 1-20 without sign or zeros, a session id's shape, cart and viewed
    SKUs comma-separated without blanks), read in a fraction of its time; None leaves any other request (and its
    error messages) to the serializer."""
    cart = _plain_skus(query.get("cart"))
    viewed = _plain_skus(query.get("viewed"))
    if cart is None or viewed is None:
        return None
    site_key = query.get("site_key", "")
    placement = query.get("placement", Placement.PRODUCT)
    sku = query.get("sku", "")
    limit = query.get("limit")
    sid = query.get("sid", "")
    if (
        not _SITE_KEY_SHAPE.fullmatch(site_key)
        or placement not in _PLACEMENTS
        or len(sku) > SKU_MAX_LENGTH
        or sku != sku.strip()
        or "\x00" in sku
        or (not sku and placement == Placement.PRODUCT)
        or (limit is not None and not (_LIMIT_SHAPE.fullmatch(limit) and int(limit) <= MAX_LIMIT))
        or (sid and not _SESSION_ID.fullmatch(sid))
    ):
        return None
    return {
        "site_key": site_key,
        "sku": sku,
        "placement": placement,
        "limit": DEFAULT_LIMIT if limit is None else int(limit),
        "cart": cart,
        "viewed": viewed,
        "sid": sid,
    }


_MAX_SKU_LIST_LENGTH = MAX_SESSION_SKUS * (SKU_MAX_LENGTH + 1)  # SkuListField's max_length


def _plain_skus(value: str | None) -> list[str] | None:
    """SkuListField's list for a value in plain form (non-empty SKUs, each trimmed, comma-separated; [] when the
    parameter is absent); None for any other value (an empty one, blanks, NUL, too many or too long SKUs)."""
    if value is None:
        return []
    if not value or len(value) > _MAX_SKU_LIST_LENGTH or "\x00" in value:
        return None
    skus = list(dict.fromkeys(value.split(",")))
    if len(skus) > MAX_SESSION_SKUS or any(not sku or len(sku) > SKU_MAX_LENGTH or sku != sku.strip() for sku in skus):
        return None
    return skus


def _render(query: QueryDict) -> "RenderedAnswer":
    """Validate the parameters and render the answer; raises ValidationError (400) or StoreNotFound (404)."""
    return render_answer(data=_validate_input(query))


def render_answer(*, data: dict[str, Any]) -> "RenderedAnswer":
    """Render the answer to validated parameters; raises StoreNotFound (404) for an unknown site key."""
    store = get_serving_store(site_key=data["site_key"])
    if store is None:
        raise StoreNotFound("No store has this site key.")
    choice = get_arm(store_id=store.id, session_id=data["sid"])
    recs = get_recommendations(
        store=store,
        placement=data["placement"],
        sku=data["sku"],
        limit=data["limit"],
        cart=data["cart"],
        viewed=data["viewed"],
        arm=choice.arm if choice else None,
        seed=f"{data['sid']}:{data['placement']}:{data['sku']}",
    )
    # The OutputSerializer documents this shape; building the dict directly costs a tenth of serializing it.
    body = {
        "rec_id": recs.rec_id,
        "source": recs.source,
        "placement": recs.placement,
        # Visitors without consent are served the default arm but not labelled: their events stay out of its figures.
        "arm": choice.arm if choice and choice.counted else None,
        "settings": get_widget_settings(store_id=store.id, placement=data["placement"]).as_dict(),
        "currency": store.currency,
        "locale": store.locale,
        "items": [
            {
                "sku": i.sku,
                "name": i.name,
                "price": i.price,
                "url": i.url,
                "image": i.image,
                "rec_id": i.rec_id,
                "source": i.source,
            }
            for i in recs.items
        ],
    }
    content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return RenderedAnswer(
        store=store,
        content=content,
        etag=f'"{hashlib.blake2b(content, digest_size=12).hexdigest()}"',
        personalised=recs.personalised,
        cache_control=_cache_control(personalised=recs.personalised),
        content_length=str(len(content)),
    )


@dataclass(frozen=True)
class RenderedAnswer:
    """A widget answer ready to send: its JSON body, ETag and the store whose CORS origins it is served to."""

    store: ServingStore
    content: bytes
    etag: str
    personalised: bool
    cache_control: str
    content_length: str  # str(len(content)), the Content-Length header's value


# A widget answer's key in the answer caches: the raw (site_key, sku, placement, limit) and the experiment arm served
# ("" outside an experiment).
AnswerKey = tuple[str, str, str, str, str]


def answer_key(*, query: Mapping[str, str], load: bool = True) -> AnswerKey | None:
    """The answer cache's key of a request without a session; None when its answer is not kept (or, with load=False,
    when the store or its experiment is not in this process's caches: finding it would query the database)."""
    # Non-personalised answers are kept for RECS_ANSWER_CACHE_SECONDS, by their raw query parameters and the
    # experiment arm a session id picks (only answers that validated are kept, so a hit skips validation too). A few
    # seconds, far below the public max-age, so an item that sold out leaves the answer within seconds; 0: off.
    if float(settings.RECS_ANSWER_CACHE_SECONDS) <= 0 or not is_plain(query=query):
        return None
    arm = ""
    sid = query.get("sid", "")
    if sid:
        if not _SESSION_ID.fullmatch(sid):
            return None  # the view answers its 400; a bad session id must not share the answer without one
        site_key = query.get("site_key", "")
        if load:
            store = get_serving_store(site_key=site_key)
            choice = get_arm(store_id=store.id, session_id=sid) if store is not None else None
        else:
            found, store = process_state.serving_stores.peek(site_key)
            if not found:
                return None
            choice = None
            if store is not None:
                found, running = process_state.running_experiments.peek(store.id)
                if not found:
                    return None
                choice = get_arm(store_id=store.id, session_id=sid) if running is not None else None
        arm = f"{choice.arm}:{int(choice.counted)}" if choice is not None else ""
    return (query.get("site_key", ""), query.get("sku", ""), query.get("placement", ""), query.get("limit", ""), arm)


def is_plain(*, query: Mapping[str, str]) -> bool:
    """True for a request without a session (no cart/viewed): its answer is the same for every shopper."""
    return "cart" not in query and "viewed" not in query


def remember_answer(*, query: Mapping[str, str], answer: RenderedAnswer) -> None:
    """Keep a non-personalised answer for RECS_ANSWER_CACHE_SECONDS, in this process and (when on) the shared cache."""
    key = answer_key(query=query)
    if key is None or answer.personalised:
        return
    ttl = float(settings.RECS_ANSWER_CACHE_SECONDS)
    process_state.answers.put(key, answer, ttl=ttl)
    shared = get_shared_answers()
    if shared is not None:
        kept = SharedAnswer(
            expires_at=time.time() + ttl, etag=answer.etag, cache_control=answer.cache_control, content=answer.content
        )
        shared.put(key, kept)


def find_answer(*, key: AnswerKey, load: bool = True) -> RenderedAnswer | None:
    """The fresh kept answer for this key: this process's, else the one the processes share (then kept here for
    what is left of its time); with load=False, None rather than reading the store from the database."""
    answer = process_state.answers.get(key)
    shared = get_shared_answers() if answer is None else None
    kept = shared.get(key) if shared is not None else None
    if kept is None:
        return answer
    if load:
        store = get_serving_store(site_key=key[0])
    else:
        found, store = process_state.serving_stores.peek(key[0])
        if not found:
            return None
    if store is None:
        return None  # uninstalled since: the view answers its 404
    answer = RenderedAnswer(
        store=store,
        content=kept.content,
        etag=kept.etag,
        personalised=False,
        cache_control=kept.cache_control,
        content_length=str(len(kept.content)),
    )
    left = min(kept.expires_at - time.time(), float(settings.RECS_ANSWER_CACHE_SECONDS))
    if left > 0:
        process_state.answers.put(key, answer, ttl=left)
    return answer


# Set in a request's META (the WSGI environ) once the widget's rate limits have counted and let it through, so a
# request the fast path or the middleware hands on (bad input, a failure) is not counted again further down.
RATE_LIMITS_COUNTED = "bitrecs.widget_rate_limits_counted"


def within_rate_limits(*, request: Any) -> bool:
    """Count the request against the widget's rate limits (once: a request already counted and let through passes);
    False when one refuses it (the view answers the 429).

    `request` is a Django or DRF request, or anything with their META and GET (the WSGI fast path's)."""
    if request.META.get(RATE_LIMITS_COUNTED):
        return True
    for throttle_class in WIDGET_THROTTLES:
        throttle = throttle_class()
        if throttle.rate is not None and not throttle.allow_request(request, None):  # type: ignore[arg-type]
            return False
    request.META[RATE_LIMITS_COUNTED] = True
    return True


def serve_plain_answer(request: HttpRequest) -> HttpResponseBase | None:
    """Answer a GET without a session (no cart/viewed) within the rate limits, from this process's cache or
    rendered and cached; None leaves the request to the view: a personalised one, a refused rate limit (the view
    answers its 429 with Retry-After), a bad parameter or an unknown site key (its 400 or 404)."""
    query = request.GET
    if not is_plain(query=query) or not within_rate_limits(request=request):
        return None
    key = answer_key(query=query)
    answer = find_answer(key=key) if key is not None else None
    if answer is None:
        try:
            answer = _render(query)
        except (serializers.ValidationError, StoreNotFound):
            return None
        remember_answer(query=query, answer=answer)
    return _respond(request, answer)


def _respond(request: HttpRequest, answer: RenderedAnswer) -> HttpResponseBase:
    # Headers are read from META: request.headers would copy every header of the request first.
    meta = request.META
    not_modified = not answer.personalised and etag_matches(header=meta.get("HTTP_IF_NONE_MATCH", ""), etag=answer.etag)
    response: HttpResponseBase
    if not_modified:
        response = HttpResponseNotModified()
    else:
        response = HttpResponse(answer.content, content_type="application/json")
    for name, value in answer_headers(answer=answer, not_modified=not_modified, origin=meta.get("HTTP_ORIGIN")):
        response[name] = value
    return response


def answer_headers(*, answer: RenderedAnswer, not_modified: bool, origin: str | None) -> list[tuple[str, str]]:
    """The headers of an answer (200, or 304 when not_modified) in their order, as the view's response carries them."""
    headers = [] if not_modified else [("Content-Type", "application/json")]
    if not answer.personalised:
        headers.append(("ETag", answer.etag))
    # What CommonMiddleware adds (a hit skips it).
    headers.append(("Content-Length", "0" if not_modified else answer.content_length))
    headers.append(("Cache-Control", answer.cache_control))
    headers.append(("Allow", ALLOW))  # what DRF adds to the view's answers, so a cached answer carries it too
    if origin and is_origin_allowed(store=answer.store, origin=origin):
        headers.append(("Access-Control-Allow-Origin", origin))
    headers.append(("Vary", "Origin"))  # no other part of the stack varies these answers (the tests compare them all)
    return headers


def _cache_control(*, personalised: bool) -> str:
    if personalised:
        return "private, no-store"
    return (
        f"public, max-age={int(settings.RECS_CACHE_MAX_AGE_SECONDS)}, "
        f"stale-while-revalidate={int(settings.RECS_CACHE_STALE_SECONDS)}"
    )


def etag_matches(*, header: str, etag: str) -> bool:
    """True when an If-None-Match header names the ETag (weak or strong) or is *."""
    if not header:
        return False
    tags = parse_etags(header)
    return "*" in tags or any(tag.removeprefix("W/") == etag for tag in tags)
