"""Settings for bench.events_bench: the widget bench's settings with the bare POST view added to the URLs."""

from bench.bench_settings import *  # noqa: F403

ROOT_URLCONF = "bench.events_urls"
