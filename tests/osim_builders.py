"""Small OpenSim models built in code for the tests: every joint and function type."""

from __future__ import annotations

from typing import Any

import numpy as np

from biokin_nb.osim._opensim import opensim

RNG = np.random.default_rng(7)


def vec3(v) -> Any:
    return opensim().Vec3(*map(float, v))


def rand_vec(scale: float = 0.2) -> Any:
    return vec3(RNG.uniform(-scale, scale, 3))


def add_body(model: Any, name: str) -> Any:
    osim = opensim()
    body = osim.Body(name, 1.5, rand_vec(0.1), osim.Inertia(0.1, 0.12, 0.08))
    model.addBody(body)
    return body


def _spline(kind: str) -> Any:
    osim = opensim()
    x = np.linspace(-1.5, 1.5, 7)
    y = 0.05 * np.sin(2 * x) + 0.01 * x
    if kind == "GCVSpline":
        fn = osim.GCVSpline()
        fn.setDegree(5)
        for xi, yi in zip(x, y, strict=True):
            fn.addPoint(float(xi), float(yi))
        return fn
    fn = getattr(osim, kind)()
    for xi, yi in zip(x, y, strict=True):
        fn.addPoint(float(xi), float(yi))
    return fn


def custom_transform(coords: list[str]) -> Any:
    """A SpatialTransform with rotations about skew axes and spline/polynomial translations."""
    osim = opensim()
    axes = [(1, 0.2, 0), (0, 1, 0.3), (0.1, 0, 1), (1, 0, 0), (0, 1, 0), (0, 0, 1)]
    simm = _spline("SimmSpline")
    simm.thisown = False  # the MultiplierFunction owns it (else a double free)
    functions = [
        osim.LinearFunction(1.0, 0.0),
        osim.LinearFunction(-0.8, 0.1),
        osim.Constant(0.2),
        osim.MultiplierFunction(simm, 1.3),
        osim.PolynomialFunction(osim.Vector([0.01, -0.02, 0.03])),
        _spline("GCVSpline"),
    ]
    names = [coords[0], coords[1], None, coords[0], coords[1], coords[0]]
    return spatial_transform(list(zip(axes, functions, names, strict=True)))


def spatial_transform(axes: list[tuple]) -> Any:
    """A SpatialTransform from six ``(axis, function, coordinate name or None)`` (three
    rotations, then three translations)."""
    osim = opensim()
    st = osim.SpatialTransform()
    for i, (axis, fn, name) in enumerate(axes):
        ta = st.updTransformAxis(i)
        ta.set_axis(vec3(axis))
        ta.set_function(fn)  # not setFunction: it segfaults
        if name:
            arr = osim.ArrayStr()
            arr.append(name)
            ta.setCoordinateNames(arr)
    return st


def all_joints_model() -> Any:
    """Ground-Free-Ball-Gimbal-Universal-Pin-Slider-Weld-Custom chain with markers, a nested
    offset frame and a coupler."""
    osim = opensim()
    model = osim.Model()
    model.setName("all_joints")
    parent = model.getGround()
    kinds = ["FreeJoint", "BallJoint", "GimbalJoint", "UniversalJoint", "PinJoint", "SliderJoint"]
    kinds += ["WeldJoint"]
    for i, kind in enumerate(kinds):
        body = add_body(model, f"b{i}")
        joint = getattr(osim, kind)(
            f"j{i}", parent, rand_vec(), rand_vec(1.0), body, rand_vec(), rand_vec(1.0)
        )
        model.addJoint(joint)
        parent = body
    # nested offset frame as the custom joint's parent frame
    outer = osim.PhysicalOffsetFrame(
        "outer", parent, osim.Transform(osim.Rotation(0.4, vec3((0, 1, 0))), rand_vec())
    )
    parent.addComponent(outer)
    inner = osim.PhysicalOffsetFrame(
        "inner", outer, osim.Transform(osim.Rotation(-0.3, vec3((1, 0, 0))), rand_vec())
    )
    outer.addComponent(inner)
    body = add_body(model, "b_custom")
    transform = custom_transform(["c0", "c1"])  # kept alive until the model owns a copy
    child = osim.PhysicalOffsetFrame(
        "custom_child", body, osim.Transform(osim.Rotation(0.7, vec3((0, 0, 1))), rand_vec())
    )
    body.addComponent(child)
    custom = osim.CustomJoint("custom", inner, child, transform)
    model.addJoint(custom)
    leaf = add_body(model, "b_leaf")
    model.addJoint(
        osim.PinJoint("leaf", body, rand_vec(), rand_vec(1.0), leaf, rand_vec(), rand_vec(1.0))
    )
    coupler = osim.CoordinateCouplerConstraint()
    coupler.setName("couple")
    arr = osim.ArrayStr()
    arr.append("c0")
    coupler.setIndependentCoordinateNames(arr)
    coupler.setDependentCoordinateName("leaf_coord_0")
    coupler.setFunction(osim.LinearFunction(0.5, 0.1))
    model.addConstraint(coupler)
    for i, frame in enumerate([model.getBodySet().get("b2"), inner, body, leaf]):
        model.addMarker(osim.Marker(f"m{i}", frame, rand_vec()))
    model.finalizeConnections()
    model.initSystem()
    return model


def ground_constant_translation_model() -> Any:
    """A CustomJoint from ground with a constant translation (which does not scale) and a
    moving one, a marker on the body and one fixed to ground."""
    osim = opensim()
    model = osim.Model()
    model.setName("ground_constant")
    body = add_body(model, "b")
    st = spatial_transform(
        [
            ((0, 0, 1), osim.LinearFunction(1.0, 0.0), "r"),
            ((1, 0, 0), osim.Constant(0.1), None),
            ((0, 1, 0), osim.Constant(0.0), None),
            ((1, 0, 0), osim.Constant(0.3), None),
            ((0, 1, 0), osim.LinearFunction(1.0, 0.0), "t"),
            ((0, 0, 1), osim.Constant(-0.2), None),
        ]
    )
    joint = osim.CustomJoint(
        "j", model.getGround(), rand_vec(), rand_vec(1.0), body, rand_vec(), rand_vec(1.0), st
    )
    model.addJoint(joint)
    model.addMarker(osim.Marker("m", body, rand_vec()))
    model.addMarker(osim.Marker("m_ground", model.getGround(), rand_vec()))
    model.finalizeConnections()
    model.initSystem()
    return model
