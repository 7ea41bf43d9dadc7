"""Data: SR and IQA datasets through TFDS builders into grain pipelines; MATLAB-exact bicubic resizing.

    from asym_jax import data
    lr = data.imresize(hr, 1 / 4)                          # MATLAB imresize, HWC in [0, 1]
    source = data.sr_source("div2k", "train", manual_dir="~/data/DIV2K")
    batches = data.sr_train_dataset(source, hr_size=256, scale=4, batch_size=16, seed=0)
    kadid = data.iqa_data("kadid10k", manual_dir="~/data/kadid10k"); test = kadid.split("seed0/test")

``python -m asym_jax.data info --dataset NAME`` prepares and describes a set. This package never imports
``train`` or ``experiments``; importing it does not import JAX or TensorFlow (grain workers stay light).
"""

from asym_jax.data.datasets import IQAData, describe, iqa_data, iqa_split, names, prepare, sr_source
from asym_jax.data.files import DatasetError
from asym_jax.data.imresize import bicubic_lr, imresize, mod_crop
from asym_jax.data.samples import DISTORTIONS, SAMPLE_NAMES, distort, sample_image, sample_pairs

__all__ = ["DISTORTIONS", "DatasetError", "IQAData", "SAMPLE_NAMES", "bicubic_lr", "describe", "distort", "imresize",
           "iqa_data", "iqa_split", "mod_crop", "names", "prepare", "sample_image", "sample_pairs", "sr_eval_pairs",
           "sr_source", "sr_train_dataset"]


def __getattr__(name):
    if name in ("sr_train_dataset", "sr_eval_pairs"):
        from asym_jax.data import pipeline
        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
