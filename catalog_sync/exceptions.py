"""Domain errors of catalog_sync; management commands and views turn them into messages."""


class CatalogSyncError(Exception):
    """Base class of catalog_sync's domain errors."""


class CatalogFileError(CatalogSyncError):
    """The catalog file cannot be opened or read at all."""


class UnknownCatalogFormat(CatalogSyncError):
    """The catalog file's format is not one the importers know, or not the one asked for."""


class SyncAlreadyRunning(CatalogSyncError):
    """The store already has a running sync or import (one at a time per store)."""
