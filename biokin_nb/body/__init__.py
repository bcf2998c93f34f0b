"""The body layer: surface body models (Anny, SMPL-X) laid onto the generic OpenSim model.

Typical use::

    from biokin_nb.body import load_registration, skeleton_from_shape, fit_motion
    reg = load_registration("anny")                  # body model + markers + regressor
    subject = skeleton_from_shape(reg, {"height": 0.7})
    write_subject_osim(reg, subject, "subject.osim")  # OpenSim's Model::scale
    result = fit_motion(reg, subject, motion)        # mesh follows the skeleton
    result.summary()                                 # residuals (mm), ms per frame

Everything is in OpenSim's ground frame (X forward, Y up, Z right), metres.
"""

from biokin_nb.body.anny_body import AnnyBody
from biokin_nb.body.demo import squat_motion, walking_motion
from biokin_nb.body.fit import FitConfig, FitResult, fit_motion
from biokin_nb.body.markers import MarkerTable, build_marker_table
from biokin_nb.body.model import (
    BodyModel,
    BodyOutput,
    BodyPose,
    ShapeRangeError,
    load_body,
)
from biokin_nb.body.registration import Registration, load_registration
from biokin_nb.body.regressor import JointRegressor
from biokin_nb.body.scene import BodySkeletonScene, fit_scenes, subject_scene
from biokin_nb.body.smplx_body import SmplxBody
from biokin_nb.body.subject import Subject, skeleton_from_shape, write_subject_osim

__all__ = [
    "AnnyBody",
    "BodyModel",
    "BodyOutput",
    "BodyPose",
    "BodySkeletonScene",
    "FitConfig",
    "FitResult",
    "JointRegressor",
    "MarkerTable",
    "Registration",
    "ShapeRangeError",
    "SmplxBody",
    "Subject",
    "build_marker_table",
    "fit_motion",
    "fit_scenes",
    "load_body",
    "load_registration",
    "skeleton_from_shape",
    "squat_motion",
    "subject_scene",
    "walking_motion",
    "write_subject_osim",
]
