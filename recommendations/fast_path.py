"""The widget's answers without a session, served in front of Django's WSGI handler (bitrecs_site.wsgi wraps it).

The widget's GETs are answered from here: no request object, no middleware, no URL resolving. A fresh kept answer
(this process's, process_state.answers, or the one the processes share, shared_answers) is sent as it is; a miss
whose parameters are in their plain form (views.widget.plain_input) for a known store is rendered between the
request signals Django sends (they recycle database connections), and kept unless it is personalised (a cart or
viewed SKUs: rendered each time, never kept). Everything else goes to Django unchanged: refused rate limits, bad
input and unknown site keys (their 400 and 404), parameters in another form (WidgetAnswerMiddleware renders those
without a session, the view those with one), and any request this module cannot read as Django would (non-ASCII
query strings, too many fields).

A served answer carries exactly what the Django path sends: the answer's own headers (views.widget.answer_headers,
the same function the view's responses are built from) followed by those the middlewares in front of
WidgetAnswerMiddleware add. Those are learnt once, when the fast path is built, by running the real middlewares on
a probe answer, a 200 and a 304, for a plain and a secure request; a middleware that would change the probe itself
(a redirect to HTTPS, a rewritten header, a cookie) leaves those requests to Django. The tests compare fast-path and
Django-path responses byte for byte.
"""

import io
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import unquote

from django.conf import settings
from django.core.handlers.wsgi import WSGIRequest
from django.core.signals import request_finished, request_started
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseNotModified
from django.utils.module_loading import import_string

from recommendations.selectors import get_serving_store
from recommendations.views.widget import (
    WIDGET_PATH,
    RenderedAnswer,
    answer_headers,
    answer_key,
    etag_matches,
    find_answer,
    plain_input,
    remember_answer,
    render_answer,
    within_rate_limits,
)

WIDGET_MIDDLEWARE = "recommendations.middleware.WidgetAnswerMiddleware"
_PATH = "/" + WIDGET_PATH

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
Headers = tuple[tuple[str, str], ...]


class WidgetFastPath:
    """A WSGI application: the widget's answers without a session from here (see the module), all else from
    `application`, Django's handler."""

    def __init__(self, application: WsgiApp) -> None:
        self.application = application
        # (200 headers, 304 headers) the outer middlewares add, for a plain (False) and a secure (True) request;
        # None: those requests go to Django.
        self.outer: dict[bool, tuple[Headers, Headers] | None] = learn_outer_headers()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == _PATH and environ.get("REQUEST_METHOD") == "GET":
            outer = self.outer.get(is_secure(environ=environ))
            try:
                served = serve_cached_answer(environ=environ, outer=outer) if outer is not None else None
            except Exception:  # the rate limits' cache down, say: Django meets it again, answers its 500 and logs it
                served = None
            if served is not None:
                status, headers, body = served
                start_response(status, headers)
                return [body] if body else []
        return self.application(environ, start_response)


def serve_cached_answer(
    *, environ: Mapping[str, Any], outer: tuple[Headers, Headers]
) -> tuple[str, list[tuple[str, str]], bytes] | None:
    """(status line, headers, body) of the answer to this GET, kept or rendered here, counted against the rate limits;
    None leaves the request to Django (a refused rate limit, bad or unusual input)."""
    query = parse_query(query_string=environ.get("QUERY_STRING", ""))
    if query is None:
        return None
    key = answer_key(query=query, load=False)
    answer = find_answer(key=key, load=False) if key is not None else None
    if answer is None:
        answer = _render_here(environ=environ, query=query)
        if answer is None:
            return None
    elif not within_rate_limits(request=_ThrottledRequest(environ, query)):
        return None
    not_modified = not answer.personalised and etag_matches(
        header=environ.get("HTTP_IF_NONE_MATCH", ""), etag=answer.etag
    )
    headers = answer_headers(answer=answer, not_modified=not_modified, origin=environ.get("HTTP_ORIGIN"))
    if not_modified:
        headers.extend(outer[1])
        return "304 Not Modified", headers, b""
    headers.extend(outer[0])
    return "200 OK", headers, answer.content


def _render_here(*, environ: Mapping[str, Any], query: dict[str, str]) -> RenderedAnswer | None:
    """Render (and keep, unless personalised) the answer to a request in plain form for a known store within the rate
    limits, between the request signals Django sends (they recycle database connections); None leaves the request
    to Django."""
    data = plain_input(query=query)
    if data is None:
        return None
    request_started.send(sender=WidgetFastPath, environ=environ)
    try:
        store = get_serving_store(site_key=data["site_key"])
        if store is None or not within_rate_limits(request=_ThrottledRequest(environ, query)):
            return None  # Django answers the 404 or the 429
        answer = render_answer(data=data)
        remember_answer(query=query, answer=answer)
        return answer
    except Exception:  # a database error, say: Django's handler meets it again, and answers and logs it
        return None
    finally:
        request_finished.send(sender=WidgetFastPath)


def parse_query(*, query_string: str) -> dict[str, str] | None:
    """The query's parameters as Django's request.GET.get reads them; None when Django would read the string
    otherwise (non-ASCII) or refuse it (a repeated parameter, more than DATA_UPLOAD_MAX_NUMBER_FIELDS fields)."""
    if not query_string.isascii():
        return None  # Django decodes these as UTF-8 or Latin-1: left to it
    most = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    if most is not None and query_string.count("&") + 1 > most:
        return None
    params: dict[str, str] = {}
    for part in query_string.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if "%" in part or "+" in part:  # what urllib.parse.parse_qsl does (UTF-8, errors replaced)
            name = unquote(name.replace("+", " "))
            value = unquote(value.replace("+", " "))
        if name in params:
            return None  # a repeated parameter: Django refuses it (bitrecs_site.query_params)
        params[name] = value
    return params


def is_secure(*, environ: Mapping[str, Any]) -> bool:
    """request.is_secure() for this environ (SECURE_PROXY_SSL_HEADER first, then wsgi.url_scheme)."""
    proxy_header = settings.SECURE_PROXY_SSL_HEADER
    if proxy_header:
        header, secure_value = proxy_header
        value = environ.get(header)
        if value is not None:
            return bool(value.split(",", 1)[0].strip() == secure_value)
    return bool(environ.get("wsgi.url_scheme") == "https")


class _ThrottledRequest:
    """What the widget's throttles read of a request: META (the client address) and GET (the site key)."""

    def __init__(self, environ: Mapping[str, Any], query: dict[str, str]) -> None:
        self.META = environ
        self.GET = query


def learn_outer_headers() -> dict[bool, tuple[Headers, Headers] | None]:
    """For a plain and a secure request: the headers the middlewares before WidgetAnswerMiddleware add to its 200 and
    304 answers, in order; None when they would do more than add headers (or no such middleware is installed)."""
    names = list(settings.MIDDLEWARE)
    if WIDGET_MIDDLEWARE not in names:
        return {False: None, True: None}
    outer = names[: names.index(WIDGET_MIDDLEWARE)]
    learnt: dict[bool, tuple[Headers, Headers] | None] = {}
    for secure in (False, True):
        ok = _added_headers(outer=outer, secure=secure, not_modified=False)
        not_modified = _added_headers(outer=outer, secure=secure, not_modified=True)
        learnt[secure] = (ok, not_modified) if ok is not None and not_modified is not None else None
    return learnt


def _added_headers(*, outer: list[str], secure: bool, not_modified: bool) -> Headers | None:
    probe: HttpResponseBase = HttpResponseNotModified() if not_modified else HttpResponse(b"{}", "application/json")
    for name, value in _PROBE_HEADERS:
        if not (not_modified and name == "Content-Type"):
            probe[name] = value
    before = list(probe.items())

    def inner(request: HttpRequest) -> HttpResponseBase:
        return probe

    chain: Callable[[HttpRequest], HttpResponseBase] = inner
    for name in reversed(outer):
        chain = import_string(name)(chain)
    try:
        response = chain(_probe_request(secure=secure))
    except Exception:  # a middleware that refuses the probe (e.g. its host): leave such requests to Django
        return None
    items = list(response.items())
    if response is not probe or items[: len(before)] != before or response.cookies:
        return None
    return tuple(items[len(before) :])


_PROBE_HEADERS = (
    ("Content-Type", "application/json"),
    ("ETag", '"probe"'),
    ("Content-Length", "2"),
    ("Cache-Control", "public, max-age=1"),
    ("Allow", "GET"),
    ("Access-Control-Allow-Origin", "https://probe.invalid"),
    ("Vary", "Origin"),
)


def _probe_request(*, secure: bool) -> WSGIRequest:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": _PATH,
        "QUERY_STRING": "",
        "SERVER_NAME": "probe.invalid",
        "SERVER_PORT": "443" if secure else "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "https" if secure else "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
    }
    if settings.SECURE_PROXY_SSL_HEADER:
        header, secure_value = settings.SECURE_PROXY_SSL_HEADER
        environ[header] = secure_value if secure else "http"
    return WSGIRequest(environ)
