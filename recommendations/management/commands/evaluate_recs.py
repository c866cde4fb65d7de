import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bitrecs_site.db import require_migrated_database
from recommendations.engine import EngineConfig
from recommendations.evaluation import Model, Serving, result_json, run_evaluation, run_heldout_evaluation


class Command(BaseCommand):
    help = (
        "Offline quality of the production recommender on an Amazon Reviews interactions file "
        "(leave-last-out, full ranking; see EVALUATION.md). Prints one JSON object."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interactions", required=True, help="Amazon Reviews 2023 JSON list or JSON lines.")
        parser.add_argument("--k", type=int, default=10, help="List length (default 10).")
        parser.add_argument("--json", action="store_true", help="Accepted for scripts; the output is always JSON.")
        parser.add_argument(
            "--baseline",
            choices=[m.value for m in Model if m is not Model.ENGINE],
            help="Evaluate a reference model instead of the engine.",
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar on stderr.")
        parser.add_argument(
            "--no-tune",
            action="store_true",
            help="Switch the engine's per-store self-tuning off (EngineConfig's a-priori blend).",
        )
        parser.add_argument(
            "--serving",
            choices=[s.value for s in Serving],
            default=Serving.ENGINE.value,
            help="The engine's serving path: engine (the live engine, default) or stored-lists (the lists the "
            "production rebuild writes, answered through the widget's selector, as stores above "
            "RECS_LIVE_ENGINE_MAX_PRODUCTS are served).",
        )
        parser.add_argument(
            "--heldout",
            action="store_true",
            help="Two-fold held-out protocol: settings chosen on one half of the users, reported on the other.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["k"] < 1:
            raise CommandError("--k must be at least 1.")
        if options["serving"] != Serving.ENGINE and (options["baseline"] or options["heldout"]):
            raise CommandError("--serving stored-lists evaluates the engine; not with --baseline or --heldout.")
        require_migrated_database()
        if options["heldout"]:
            if options["baseline"]:
                raise CommandError("--heldout evaluates the engine; it does not combine with --baseline.")
            try:
                heldout = run_heldout_evaluation(path=options["interactions"], k=options["k"])
            except FileNotFoundError as exc:
                raise CommandError(f"No such file: {options['interactions']}") from exc
            self.stdout.write(json.dumps(heldout.as_dict()))
            return
        try:
            result = run_evaluation(
                path=options["interactions"],
                k=options["k"],
                model=options["baseline"] or Model.ENGINE,
                progress=None if options["no_progress"] else sys.stderr,
                config=EngineConfig(self_tune=False) if options["no_tune"] else None,
                serving=options["serving"],
            )
        except FileNotFoundError as exc:
            raise CommandError(f"No such file: {options['interactions']}") from exc
        self.stdout.write(result_json(result))
