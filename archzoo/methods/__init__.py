"""Training and inference methods of the collection's papers, applicable to any model. Each module
that plugs into the engine registers its method with ``@register_method`` (archzoo.engine.plugins)."""
from __future__ import annotations

from archzoo.methods import convbn, multires  # noqa: F401

__all__ = ["convbn", "multires"]
