"""``sporax.parallel``: layout math (``layout``) and, later, data-parallel and sharding helpers."""

from sporax.parallel import layout
from sporax.parallel.layout import Layout, to_mesh_and_spec

__all__ = ["layout", "Layout", "to_mesh_and_spec"]
