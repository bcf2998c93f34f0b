"""Read any ``.osim`` through the opensim API into a :class:`KinematicModel`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from biokin_nb.osim._opensim import opensim
from biokin_nb.osim.functions import PiecewisePolynomial, UnsupportedModelError, from_opensim
from biokin_nb.osim.model import (
    GROUND,
    AxisMotion,
    Body,
    Coordinate,
    Coupler,
    FixedFrame,
    Joint,
    KinematicModel,
    Marker,
)

_X, _Y, _Z = np.eye(3)
# Joint types with a fixed sequence of axes: (kind, axis) per coordinate, in order.
_FIXED_AXES: dict[str, tuple[tuple[str, np.ndarray], ...]] = {
    "WeldJoint": (),
    "PinJoint": (("rotation", _Z),),
    "SliderJoint": (("translation", _X),),
    "UniversalJoint": (("rotation", _X), ("rotation", _Y)),
    "BallJoint": (("rotation", _X), ("rotation", _Y), ("rotation", _Z)),
    "GimbalJoint": (("rotation", _X), ("rotation", _Y), ("rotation", _Z)),
    "FreeJoint": (
        ("rotation", _X),
        ("rotation", _Y),
        ("rotation", _Z),
        ("translation", _X),
        ("translation", _Y),
        ("translation", _Z),
    ),
}
SUPPORTED_JOINTS = ("CustomJoint", *_FIXED_AXES)
_MOTION = {1: "rotational", 2: "translational", 3: "coupled"}


def load_model(path: str | Path) -> KinematicModel:
    """Read the kinematics of an OpenSim model file.

    Args:
        path: a ``.osim`` file.

    Raises:
        FileNotFoundError: no such file.
        ValueError: OpenSim cannot read the file.
        UnsupportedModelError: a joint or function type biokin_nb does not represent.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no OpenSim model at {path} (give the path of a .osim file)")
    osim = opensim()
    try:
        model = osim.Model(str(path))
        model.initSystem()
    except RuntimeError as err:
        raise ValueError(f"OpenSim could not read {path}: {err}") from None
    return from_opensim_model(model, source=path)


def from_opensim_model(model: Any, source: Path | None = None) -> KinematicModel:
    """Build a :class:`KinematicModel` from an ``opensim.Model`` that has been initialized."""
    body_names = [b.getName() for b in model.getBodySet()]
    coord_names = [c.getName() for c in model.getCoordinateSet()]
    joints = _ordered_joints(model, body_names)
    joint_of_body = {j.child_body: i for i, j in enumerate(joints)}
    joints = [_with_motions(j, model, coord_names) for j in joints]
    bodies = tuple(
        _body(b, body_names, joints, joint_of_body.get(i, -1))
        for i, b in enumerate(model.getBodySet())
    )
    return KinematicModel(
        name=model.getName(),
        bodies=bodies,
        joints=tuple(joints),
        coordinates=tuple(_coordinate(c) for c in model.getCoordinateSet()),
        markers=tuple(_marker(m, body_names) for m in model.getMarkerSet()),
        couplers=tuple(_couplers(model, coord_names)),
        source=source,
    )


# ---- frames ----------------------------------------------------------------------------
def _transform(t: Any) -> tuple[np.ndarray, np.ndarray]:
    r = t.R().asMat33()
    rot = np.array([[r.get(i, j) for j in range(3)] for i in range(3)])
    p = t.p()
    return rot, np.array([p.get(i) for i in range(3)])


def _base_index(frame: Any, body_names: list[str]) -> int:
    base = frame.findBaseFrame()
    name = base.getName()
    if base.getConcreteClassName() == "Ground":
        return GROUND
    return body_names.index(name)


def _fixed_frame(frame: Any, body_names: list[str]) -> FixedFrame:
    """The frame's pose in its base body as rotation and origin-by-scale matrix."""
    osim = opensim()
    kind = frame.getConcreteClassName()
    if kind in ("Body", "Ground"):
        return FixedFrame(_base_index(frame, body_names), np.eye(3), np.zeros((3, 3)))
    if kind != "PhysicalOffsetFrame":
        raise UnsupportedModelError(f"unsupported frame type {kind} ({frame.getName()!r})")
    offset = osim.PhysicalOffsetFrame.safeDownCast(frame)
    parent = _fixed_frame(offset.getParentFrame(), body_names)
    rot, trans = _transform(offset.getOffsetTransform())
    return FixedFrame(
        parent.body,
        parent.rotation @ rot,
        parent.origin_by_scale + parent.rotation @ np.diag(trans),
    )


# ---- joints ----------------------------------------------------------------------------
def _ordered_joints(model: Any, body_names: list[str]) -> list[Joint]:
    """Joints (without motions yet) in topological order, parents first."""
    pending = []
    for j in model.getJointSet():
        kind = j.getConcreteClassName()
        if kind not in SUPPORTED_JOINTS:
            raise UnsupportedModelError(
                f"joint {j.getName()!r} is a {kind}; biokin_nb reads {', '.join(SUPPORTED_JOINTS)}"
            )
        parent = _fixed_frame(j.getParentFrame(), body_names)
        child = _fixed_frame(j.getChildFrame(), body_names)
        pending.append(Joint(j.getName(), kind, parent.body, child.body, parent, child, ()))
    ordered, placed = [], {GROUND}
    while pending:
        ready = [j for j in pending if j.parent_body in placed]
        if not ready:
            names = ", ".join(j.name for j in pending)
            raise UnsupportedModelError(f"joints not connected to ground (or in a loop): {names}")
        for j in ready:
            if j.child_body in placed:
                raise UnsupportedModelError(f"body {body_names[j.child_body]} has two joints")
            ordered.append(j)
            placed.add(j.child_body)
            pending.remove(j)
    return ordered


def _with_motions(joint: Joint, model: Any, coord_names: list[str]) -> Joint:
    os_joint = model.getJointSet().get(joint.name)
    motions = tuple(_motions(os_joint, coord_names))
    return Joint(**{**joint.__dict__, "motions": motions})


def _motions(joint: Any, coord_names: list[str]) -> Iterator[AxisMotion]:
    kind = joint.getConcreteClassName()
    if kind == "CustomJoint":
        yield from _custom_motions(joint, coord_names)
        return
    identity = PiecewisePolynomial.polynomial([0.0, 1.0])
    for i, (motion, axis) in enumerate(_FIXED_AXES[kind]):
        index = coord_names.index(joint.get_coordinates(i).getName())
        yield AxisMotion(motion, axis, index, identity, scales=False)


def _custom_motions(joint: Any, coord_names: list[str]) -> Iterator[AxisMotion]:
    osim = opensim()
    transform = osim.CustomJoint.safeDownCast(joint).getSpatialTransform()
    for i in range(6):
        axis_obj = transform.getTransformAxis(i)
        names = axis_obj.getCoordinateNamesInArray()
        if names.getSize() > 1:
            raise UnsupportedModelError(
                f"{joint.getName()}: TransformAxis {axis_obj.getName()!r} depends on "
                f"{names.getSize()} coordinates; biokin_nb supports one"
            )
        function = from_opensim(axis_obj.get_function())
        coordinate = coord_names.index(names.get(0)) if names.getSize() else -1
        if coordinate < 0 and function.is_constant and function.coefs[0, 0] == 0.0:
            continue  # a zero constant moves nothing
        axis = np.array([axis_obj.getAxis().get(k) for k in range(3)])
        kind = "rotation" if i < 3 else "translation"
        yield AxisMotion(kind, axis / np.linalg.norm(axis), coordinate, function, scales=i >= 3)


# ---- bodies, coordinates, markers, couplers -------------------------------------------
def _body(body: Any, body_names: list[str], joints: list[Joint], joint: int) -> Body:
    com = body.getMassCenter()
    parent = joints[joint].parent_body if joint >= 0 else GROUND
    return Body(
        body.getName(), parent, joint, body.getMass(), np.array([com.get(i) for i in range(3)])
    )


def _coordinate(c: Any) -> Coordinate:
    return Coordinate(
        name=c.getName(),
        joint=c.getJoint().getName(),
        motion=_MOTION.get(int(c.getMotionType()), "rotational"),
        range=(c.getRangeMin(), c.getRangeMax()),
        default=c.getDefaultValue(),
        locked=bool(c.getDefaultLocked()),
        clamped=bool(c.getDefaultClamped()),
    )


def _marker(marker: Any, body_names: list[str]) -> Marker:
    frame = _fixed_frame(marker.getParentFrame(), body_names)
    loc = marker.get_location()
    origin = frame.origin_by_scale + frame.rotation @ np.diag([loc.get(i) for i in range(3)])
    return Marker(marker.getName(), frame.body, origin)


def _couplers(model: Any, coord_names: list[str]) -> Iterator[Coupler]:
    osim = opensim()
    for constraint in model.getConstraintSet():
        coupler = osim.CoordinateCouplerConstraint.safeDownCast(constraint)
        if coupler is None or not constraint.get_isEnforced():
            continue
        independent = coupler.getIndependentCoordinateNames()
        if independent.getSize() != 1:
            raise UnsupportedModelError(
                f"coupler {constraint.getName()!r} has {independent.getSize()} independent "
                "coordinates; biokin_nb supports one"
            )
        yield Coupler(
            constraint.getName(),
            coord_names.index(coupler.getDependentCoordinateName()),
            coord_names.index(independent.get(0)),
            from_opensim(coupler.getFunction()),
        )
