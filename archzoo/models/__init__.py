"""archzoo's model families, one module per paper family (timm's layout).

Every module here is imported on ``import archzoo``: its ``@register_model`` functions enter timm's
registry (so ``timm.create_model`` finds them) and its ``@register_reference`` adapters enter
:mod:`archzoo.reference`. Modules starting with ``_`` are helpers, not families.
"""
from __future__ import annotations

import importlib
import pkgutil

FAMILY_MODULES: list[str] = []

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")
        FAMILY_MODULES.append(_info.name)
