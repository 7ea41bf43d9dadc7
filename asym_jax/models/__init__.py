"""Networks: feature backbones (here), generators, discriminators and IQA heads (later issues)."""

from asym_jax.models import backbones

__all__ = ["backbones"]
