"""Tasks of archzoo's training engine (see :mod:`archzoo.engine.plugins`): each module registers one
or more with ``@register_task``. Importing this package registers the built-in tasks."""
from __future__ import annotations

from archzoo.tasks import classification  # noqa: F401

__all__ = ["classification"]
