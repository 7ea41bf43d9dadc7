"""IQA models: the NR-IQA model (backbone + pooling + head) of the ``iqa_nr`` job."""

from asym_jax.models.iqa.nr import NRIQA, POOLINGS, default_taps

__all__ = ["NRIQA", "POOLINGS", "default_taps"]
