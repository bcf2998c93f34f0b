"""Motion sources for the generic model: the procedural action library, ground contact,
``.mot`` trials and AMASS files.

Conventions (DESIGN.md): OpenSim ground frame (Y up, X forward, Z right), SI units inside
(rad, m, s), degrees only in the action library's keyframe tables; motions are
:class:`biokin_nb.osim.coordinates.Motion` (``time`` (T,) s, ``q`` (T, C) in the model's
coordinate order).
"""

from biokin_nb.motion.actions import ACTIONS, action_name, make_action
from biokin_nb.motion.contact import (
    ContactReport,
    SolePoints,
    contact_metrics,
    ground_contact,
    sole_points,
    sole_positions,
)
from biokin_nb.motion.sources import (
    AmassSequence,
    amass_to_motion,
    clip_motion,
    is_motion_file,
    motion_from_mot,
    motion_source,
    read_amass,
    resample,
)
from biokin_nb.motion.style import ActionStyle, random_style

__all__ = [
    "ACTIONS",
    "ActionStyle",
    "AmassSequence",
    "ContactReport",
    "SolePoints",
    "action_name",
    "amass_to_motion",
    "clip_motion",
    "contact_metrics",
    "ground_contact",
    "is_motion_file",
    "make_action",
    "motion_from_mot",
    "motion_source",
    "random_style",
    "read_amass",
    "resample",
    "sole_points",
    "sole_positions",
]
