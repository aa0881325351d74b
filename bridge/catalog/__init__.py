"""The service catalog: what a service is (``ServiceSpec``), the built-ins, and one instance's spec."""

from bridge.catalog.services import CatalogError, ServiceSpec, load_catalog

__all__ = ["CatalogError", "ServiceSpec", "load_catalog"]
