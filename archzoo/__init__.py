"""archzoo: the architectures, methods and tools of a collection of deep-learning papers, each
checked against its paper's numbers and its authors' code, behind timm's model API.

    import archzoo, timm
    model = archzoo.create_model("hornet_tiny_7x7")      # or timm.create_model(...) once imported
    archzoo.list_models("hornet*")
    fast = archzoo.deploy(model, device="cpu")          # fused, re-parameterised inference form
"""
from __future__ import annotations

__version__ = "0.1.0"

from archzoo import models  # noqa: F401  (registers every family with timm)
from archzoo.checkpoint import CheckpointError, load_checkpoint
from archzoo.deploy import DeployReport, deploy  # the function shadows the submodule's name on purpose
from archzoo.errors import ArchzooError
from archzoo.papers import PaperCard, Variant, card_for_model, find_card, load_cards
from archzoo.registry import UnknownModelError, create_model, list_models
from archzoo.validation import InputError

__all__ = [
    "__version__",
    "create_model",
    "list_models",
    "load_cards",
    "find_card",
    "card_for_model",
    "load_checkpoint",
    "deploy",
    "DeployReport",
    "PaperCard",
    "Variant",
    "ArchzooError",
    "CheckpointError",
    "UnknownModelError",
    "InputError",
]
