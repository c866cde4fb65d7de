"""WidgetAnswerMiddleware: the widget's answers served before the rest of the stack."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase

from recommendations.views.widget import WIDGET_PATH, serve_plain_answer


class WidgetAnswerMiddleware:
    """Serve the widget's answers without a session before the rest of the stack: from the answer caches or
    rendered and cached, with rate limits, ETag/304 and CORS applied.

    In front of Django, recommendations.fast_path already sends fresh cached answers and renders the misses whose
    parameters are in their plain form; this middleware answers the rest of these requests (parameters in another
    form, a server without the fast path such as the test client), and its place in MIDDLEWARE tells the fast path
    which middlewares' headers its answers carry (those before this one).

    Such an answer skips the middlewares below this one, URL resolving and DRF: a cached one then costs less than
    a bare view. Personalised requests, refused rate limits and bad input go down the stack to the view, which
    answers them (and documents the endpoint). It sits after the middlewares that add headers to every response
    (SecurityMiddleware, XFrameOptionsMiddleware), which still do; the rest add nothing to a widget answer (it does
    its own CORS per store, touches no session, cookie or message), and the serving tests compare every header of
    an answer served here with those of the same answer computed through the whole stack without this middleware.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.path = "/" + WIDGET_PATH

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.path_info == self.path and request.method == "GET":
            response = serve_plain_answer(request)
            if response is not None:
                return response
        return self.get_response(request)
