"""The synthetic two-view dataset: generation, on-disk format, torch Dataset.

Typical use::

    from biokin_nb.dataset import GenerateConfig, generate, ClipWindows
    generate("data/generated/small", GenerateConfig(subjects=2, size=256, duration_s=1.0))
    windows = ClipWindows("data/generated/small", split="train", window=32)
"""

from biokin_nb.dataset.format import (
    CLIP_FILES,
    SPLITS,
    VIEWS,
    Clip,
    read_clip,
    read_index,
    subject_splits,
)
from biokin_nb.dataset.generate import (
    DatasetMismatchError,
    GenerateConfig,
    GenerateResult,
    generate,
    make_clip,
    make_subject,
)
from biokin_nb.dataset.torch_dataset import ClipWindows
from biokin_nb.dataset.variety import VarietyReport, variety_report

__all__ = [
    "CLIP_FILES",
    "SPLITS",
    "VIEWS",
    "VarietyReport",
    "Clip",
    "ClipWindows",
    "DatasetMismatchError",
    "GenerateConfig",
    "GenerateResult",
    "generate",
    "make_clip",
    "make_subject",
    "read_clip",
    "read_index",
    "subject_splits",
    "variety_report",
]
