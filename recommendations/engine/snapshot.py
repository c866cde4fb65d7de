"""A built Recommender saved to one file and loaded back, so web processes share the build a worker made.

The file is an uncompressed NumPy archive (`np.savez`): every array of the index, the sparse matrices as their CSR
parts, and the catalog, settings and self-tuning report as one JSON document stored as bytes. It is read with
`allow_pickle=False`, so a file can hold data only, never code; a file this version did not write (another
FORMAT, another owner, a missing part, a wrong shape) is refused with SnapshotError, and the caller builds instead.
Writing goes to a temporary file in the same directory, renamed over the old one, so a reader never sees half a file.
"""

import dataclasses
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recommendations.engine.behaviour import Signals
from recommendations.engine.core import CatalogItem, EngineConfig, Recommender
from recommendations.engine.tuning import TuningReport

__all__ = ["FORMAT", "SnapshotError", "load_engine", "save_engine"]

# Bumped whenever what the file holds changes: an older file is then refused and rebuilt.
FORMAT = 1
_MATRICES = ("matrix", "copurchase", "customer", "sequence", "linear")
_VECTORS = ("neighbour_ids", "neighbour_sims", "hub", "popularity", "raw_popularity", "trending")


class SnapshotError(Exception):
    """The file is not a snapshot this version can load."""


def save_engine(engine: Recommender, path: Path, *, owner: str = "") -> None:
    """Write the engine to path atomically (the directory is created); owner names what it was built for (load_engine
    refuses it for another)."""
    signals = engine._signals
    matrices = {
        "matrix": engine._matrix,
        "copurchase": signals.copurchase,
        "customer": signals.customer,
        "sequence": signals.sequence,
        "linear": signals.linear,
    }
    arrays: dict[str, np.ndarray] = {
        "neighbour_ids": engine._neighbour_ids,
        "neighbour_sims": engine._neighbour_sims,
        "hub": engine._hub,
        "popularity": signals.popularity,
        "raw_popularity": signals.raw_popularity,
        "trending": signals.trending,
    }
    for name, matrix in matrices.items():
        csr = sp.csr_matrix(matrix)
        arrays[f"{name}.data"] = csr.data
        arrays[f"{name}.indices"] = csr.indices
        arrays[f"{name}.indptr"] = csr.indptr
        arrays[f"{name}.shape"] = np.asarray(csr.shape, dtype=np.int64)
    tuning = engine.tuning
    meta = {
        "format": FORMAT,
        "owner": owner,
        "items": [dataclasses.asdict(item) for item in engine.items],
        "config": dataclasses.asdict(engine.config),
        "tuning": None if tuning is None else {**dataclasses.asdict(tuning), "per_case": []},
        "flags": {
            "has_popularity": signals.has_popularity,
            "has_trending": signals.has_trending,
            "has_copurchase": signals.has_copurchase,
        },
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would keep web processes running as another user out
        with os.fdopen(handle, "wb") as out:
            np.savez(out, **arrays)  # type: ignore[arg-type]
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_engine(path: Path, *, owner: str = "") -> Recommender:
    """Read an engine save_engine wrote for owner; SnapshotError when the file is missing, damaged, of another format
    or another owner's."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        meta = json.loads(arrays["meta"].tobytes().decode())
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise SnapshotError(f"{path}: not a snapshot of format {FORMAT}")
        if meta.get("owner") != owner:
            raise SnapshotError(f"{path}: built for {meta.get('owner')!r}, not {owner!r}")
        matrices = {
            name: sp.csr_matrix(
                (arrays[f"{name}.data"], arrays[f"{name}.indices"], arrays[f"{name}.indptr"]),
                shape=tuple(int(x) for x in arrays[f"{name}.shape"]),
            )
            for name in _MATRICES
        }
        items = [_item(raw) for raw in meta["items"]]
        config = EngineConfig(**meta["config"])
        tuning = None if meta["tuning"] is None else TuningReport(**{**meta["tuning"], "per_case": ()})
        flags = meta["flags"]
        n = len(items)
        for name in _VECTORS:
            if arrays[name].shape[0] != n:
                raise SnapshotError(f"{path}: {name} has {arrays[name].shape[0]} rows for {n} items")
        for name, matrix in matrices.items():
            if matrix.shape[0] != n:
                raise SnapshotError(f"{path}: {name} has {matrix.shape[0]} rows for {n} items")
    except SnapshotError:
        raise
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError, EOFError, zipfile.BadZipFile) as error:
        raise SnapshotError(f"{path}: {error}") from error
    signals = Signals(
        popularity=arrays["popularity"],
        raw_popularity=arrays["raw_popularity"],
        trending=arrays["trending"],
        copurchase=matrices["copurchase"],
        customer=matrices["customer"],
        sequence=matrices["sequence"],
        linear=matrices["linear"],
        has_popularity=bool(flags["has_popularity"]),
        has_trending=bool(flags["has_trending"]),
        has_copurchase=bool(flags["has_copurchase"]),
    )
    return Recommender(
        items=items,
        matrix=matrices["matrix"],
        neighbour_ids=arrays["neighbour_ids"],
        neighbour_sims=arrays["neighbour_sims"],
        hub=arrays["hub"],
        signals=signals,
        config=config,
        tuning=tuning,
    )


def _item(raw: Any) -> CatalogItem:
    if not isinstance(raw, dict):
        raise TypeError("an item is not an object")
    return CatalogItem(**{**raw, "tags": tuple(raw.get("tags") or ())})
