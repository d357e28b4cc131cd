"""The catalog of known issues: YAML entries, their schema, and the matcher.

``load_catalog(etc_root)`` → :class:`Catalog` (shipped entries plus operator
files in ``/etc/netmedic/catalog.d``); :mod:`netmedic.diagnose` turns a catalog
and a facts document into findings. Format: docs/catalog.md.
"""

from __future__ import annotations

from netmedic.catalog.loader import Catalog, CatalogError, Entry, Evidence, load_catalog

__all__ = ["Catalog", "CatalogError", "Entry", "Evidence", "load_catalog"]
