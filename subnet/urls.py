from django.urls import path, re_path

from subnet.views import MinerStatsView, ProbeCasesView, PublicKeyView

app_name = "subnet"

urlpatterns = [
    path("public_key", PublicKeyView.as_view(), name="public-key"),
    path("validator/probes", ProbeCasesView.as_view(), name="probe-cases"),
    # Any segment is taken, so that a negative or non-numeric time gets a JSON 400 that says so, not a 404.
    re_path(r"^miner/stats/from/(?P<from>[^/]+)/to/(?P<to>[^/]+)$", MinerStatsView.as_view(), name="miner-stats"),
]
