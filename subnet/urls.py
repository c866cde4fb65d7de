from django.urls import path, re_path

from subnet.views import MinerStatsView, ProbeCasesView, PublicKeyView

app_name = "subnet"

urlpatterns = [
    path("public_key", PublicKeyView.as_view(), name="public-key"),
    path("validator/probes", ProbeCasesView.as_view(), name="probe-cases"),
    # A sign is accepted so that a negative time gets a 400 that says so rather than a 404.
    re_path(r"^miner/stats/from/(?P<from>-?[0-9]+)/to/(?P<to>-?[0-9]+)$", MinerStatsView.as_view(), name="miner-stats"),
]
