"""CachedAnswerMiddleware: the widget's cached answers served before the rest of the stack."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase

from recommendations.views.widget import WIDGET_PATH, serve_cached_answer


class CachedAnswerMiddleware:
    """Serve a fresh cached widget answer (rate limits, ETag/304 and CORS applied) without the rest of the stack.

    A hit skips the middlewares below this one, URL resolving and DRF: the cost of the answer is then less than that
    of a bare view. It sits after the middlewares that add headers to every response (SecurityMiddleware,
    XFrameOptionsMiddleware), which still do; the rest add nothing to a widget answer (it does its own CORS per
    store, touches no session, cookie or message), and the serving tests compare every header of a cached answer
    with those of the same answer computed through the whole stack. Anything else goes down the stack as usual.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.path = "/" + WIDGET_PATH

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.path_info == self.path and request.method == "GET":
            response = serve_cached_answer(request)
            if response is not None:
                return response
        return self.get_response(request)
