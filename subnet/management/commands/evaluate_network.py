import contextlib
import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bitrecs_site.db import require_migrated_database
from subnet.selectors import DEFAULT_POOL_SIZE, MAX_POOL_SIZE, MIN_POOL_SIZE


class Command(BaseCommand):
    help = (
        "The network path on evaluate_recs's protocol: each case's query sent as the gateway asks the network, "
        "through a local validator and offline miners; NDCG/HR/coverage beside the engine's, and the pool's recall. "
        "Prints one JSON object."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interactions", required=True, help="Amazon Reviews 2023 JSON list or JSON lines.")
        parser.add_argument("--k", type=int, default=10, help="List length asked of the miners (1-20, default 10).")
        parser.add_argument("--miners", type=int, default=3, help="Offline miners behind the validator (default 3).")
        parser.add_argument("--limit", type=int, default=None, help="Evaluate the first N cases only.")
        parser.add_argument("--pool-size", type=int, default=DEFAULT_POOL_SIZE, help="Products per request pool.")
        parser.add_argument("--seed", type=int, default=13, help="Draws and shuffles the request pools (default 13).")
        parser.add_argument(
            "--port-base",
            type=int,
            default=None,
            help="Validator on this port, miners on the next (default: free ports).",
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress lines on stderr.")

    def handle(self, *args: Any, **options: Any) -> None:
        require_migrated_database()
        if not 1 <= options["k"] <= 20:
            raise CommandError("--k must be 1 to 20 (what a validator asks miners for).")
        if options["miners"] < 1:
            raise CommandError("--miners must be at least 1.")
        if options["limit"] is not None and options["limit"] < 1:
            raise CommandError("--limit must be at least 1.")
        if not MIN_POOL_SIZE <= options["pool_size"] <= MAX_POOL_SIZE:
            raise CommandError(f"--pool-size must be {MIN_POOL_SIZE} to {MAX_POOL_SIZE}.")
        base = options["port_base"]
        if base is not None and not 1024 <= base <= 65535 - options["miners"]:
            raise CommandError("--port-base must leave room for the validator and its miners (1024-65535).")
        ports = None if base is None else [base + offset for offset in range(options["miners"] + 1)]
        # bittensor logs to the stdout it finds at import: kept on stderr, so stdout is the JSON object alone.
        with contextlib.redirect_stdout(sys.stderr):
            from subnet.network_evaluation import run_network_evaluation

            try:
                result = run_network_evaluation(
                    path=options["interactions"],
                    k=options["k"],
                    miners=options["miners"],
                    limit=options["limit"],
                    pool_size=options["pool_size"],
                    seed=options["seed"],
                    ports=ports,
                    progress=None if options["no_progress"] else sys.stderr,
                )
            except FileNotFoundError as exc:
                raise CommandError(f"No such file: {options['interactions']}") from exc
            except OSError as exc:  # a port already taken
                raise CommandError(f"Cannot start the local network: {exc}") from exc
        self.stdout.write(json.dumps(result.as_dict()))
