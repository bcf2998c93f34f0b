"""Figure contents of biokin_nb.viz on Rajagopal2016 and OpenSim's IK of its walking trial."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from biokin_nb.metrics import mae_deg
from biokin_nb.osim import forward_kinematics, load_model
from biokin_nb.osim.coordinates import Motion, read_motion
from biokin_nb.viz import angles, explorer, export, skeleton

N_FRAMES = 30
OFFSET_DEG = 2.0  # the "prediction" is the truth plus this on every rotational coordinate


@pytest.fixture(scope="module")
def model(validation_dir: Path):
    return load_model(validation_dir / "rajagopal2016_walk" / "Rajagopal2016.osim")


@pytest.fixture(scope="module")
def truth(model, validation_dir: Path) -> Motion:
    path = validation_dir / "rajagopal2016_walk" / "generated_opensim4.6" / "ik_output_walk.mot"
    full = read_motion(model, path)
    return Motion(full.time[:N_FRAMES], full.q[:N_FRAMES], full.coordinate_names)


@pytest.fixture(scope="module")
def pred(model, truth: Motion) -> np.ndarray:
    """(T, C) rad: the truth plus OFFSET_DEG on every rotational coordinate."""
    return truth.q + np.deg2rad(OFFSET_DEG) * model.rotational


@pytest.fixture(scope="module")
def sequences(truth, pred) -> dict:
    return {"OpenSim IK": truth, "network": pred}


def _legend_names(fig: go.Figure) -> list[str]:
    return [t.name for t in fig.data if t.showlegend is not False]


def _colour(trace) -> str:
    return trace.line.color if trace.mode == "lines" else trace.marker.color


# --------------------------------------------------------------------------- skeleton


def test_segments_join_each_joint_to_its_parent_bodys_joint(model):
    segments = skeleton.skeleton_segments(model)
    names = model.joint_names
    assert len(segments) == len(model.joints) - 1  # one root joint, to ground
    assert sorted(child for _, child in segments) == list(range(1, len(model.joints)))
    pairs = {(names[a], names[b]) for a, b in segments}
    assert {("hip_r", "walker_knee_r"), ("walker_knee_r", "ankle_r"), ("back", "acromial_l")} <= (
        pairs
    )


def test_skeleton_figure_traces_frames_slider_and_scene(model, sequences, truth):
    fig = skeleton.skeleton_figure(model, sequences, frame_step=3)
    n_frames = math.ceil(N_FRAMES / 3)
    assert len(fig.data) == 2 * 3  # bones, joint centres, markers per sequence
    assert _legend_names(fig) == list(sequences)
    colours = {name: {_colour(t) for t in fig.data if t.name == name} for name in sequences}
    assert all(len(c) == 1 for c in colours.values())
    assert len(set.union(*colours.values())) == len(sequences)
    assert len(fig.frames) == n_frames
    steps = fig.layout.sliders[0].steps
    assert len(steps) == n_frames
    assert [float(s.label) for s in steps] == pytest.approx(truth.time[::3], abs=0.005)
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == ["Play", "Pause"]
    scene = fig.layout.scene
    assert [scene[f"{a}axis"].title.text for a in "xyz"] == ["x (m)", "y (m)", "z (m)"]
    assert (scene.camera.up.x, scene.camera.up.y, scene.camera.up.z) == (0, 1, 0)
    ranges = np.array([scene[f"{a}axis"].range for a in "xyz"])
    assert np.ptp(ranges, axis=1) == pytest.approx([np.ptp(ranges[0])] * 3)  # a cube


def test_skeleton_frames_hold_the_fk_joint_centres(model, sequences, truth):
    fig = skeleton.skeleton_figure(model, sequences, show_markers=False)
    assert len(fig.data) == 2 * 2
    centres = forward_kinematics(model, torch.as_tensor(truth.q)).joint_centres.numpy()
    frame = fig.frames[7]
    joints = frame.data[1]
    assert np.column_stack([joints.x, joints.y, joints.z]) == pytest.approx(centres[7])
    bones = np.column_stack([frame.data[0].x, frame.data[0].y, frame.data[0].z])
    assert len(bones) == 3 * len(skeleton.skeleton_segments(model))
    assert np.isnan(bones[2::3]).all()  # a gap after each bone
    ranges = np.array([fig.layout.scene[f"{a}axis"].range for a in "xyz"])
    assert (centres >= ranges[:, 0]).all() and (centres <= ranges[:, 1]).all()


def test_skeleton_takes_fk_results_and_rejects_unequal_lengths(model, truth, pred):
    fk = forward_kinematics(model, torch.as_tensor(pred))
    fig = skeleton.skeleton_figure(model, {"truth": truth, "fk": fk})
    assert len(fig.data) == 6 and len(fig.frames) == N_FRAMES
    with pytest.raises(ValueError, match="differ in length"):
        skeleton.skeleton_figure(model, {"truth": truth, "short": pred[:10]})


def test_pose_figure_places_poses_side_by_side_along_z(model, truth):
    q = np.stack([truth.q[0], truth.q[0]])
    fig = skeleton.pose_figure(model, q, spacing=0.8, labels=["a", "b"])
    assert len(fig.data) == 2 * 2 and _legend_names(fig) == ["a", "b"]
    a, b = fig.data[1], fig.data[3]
    assert np.asarray(b.z) - np.asarray(a.z) == pytest.approx(0.8)
    assert np.asarray(b.x) == pytest.approx(np.asarray(a.x))
    assert len(skeleton.pose_figure(model, truth.q[0]).data) == 2


# --------------------------------------------------------------------------- angles


def _subplot_of(fig: go.Figure, coordinate: str) -> tuple[str, str]:
    """(xaxis, yaxis) layout keys of the subplot titled ``coordinate``."""
    titles = [a.text for a in fig.layout.annotations]
    k = titles.index(coordinate) + 1
    suffix = "" if k == 1 else str(k)
    return f"xaxis{suffix}", f"yaxis{suffix}"


def test_angle_figure_subplots_units_legend_and_values(model, sequences, truth):
    fig = angles.angle_figure(model, sequences, ["knee_angle_r", "pelvis_tx", "hip_r"])
    names = ["knee_angle_r", "pelvis_tx", "hip_flexion_r", "hip_adduction_r", "hip_rotation_r"]
    assert [a.text for a in fig.layout.annotations] == names  # a joint gives its coordinates
    assert len(fig.data) == len(names) * len(sequences)
    assert _legend_names(fig) == list(sequences)
    colours = {name: {t.line.color for t in fig.data if t.name == name} for name in sequences}
    assert all(len(c) == 1 for c in colours.values())
    assert len(set.union(*colours.values())) == len(sequences)
    x_knee, y_knee = _subplot_of(fig, "knee_angle_r")
    assert fig.layout[y_knee].title.text == "angle (deg)"
    assert fig.layout[_subplot_of(fig, "pelvis_tx")[1]].title.text == "translation (m)"
    assert fig.layout[_subplot_of(fig, "hip_rotation_r")[0]].title.text == "time (s)"
    knee = model.coordinate_index("knee_angle_r")
    trace = next(
        t
        for t in fig.data
        if t.yaxis == y_knee.replace("axis", "") and t.legendgroup == "OpenSim IK"
    )
    assert np.asarray(trace.y) == pytest.approx(np.degrees(truth.q[:, knee]))
    assert np.asarray(trace.x) == pytest.approx(truth.time)


def test_rom_band_is_the_models_range(model, sequences):
    fig = angles.angle_figure(model, sequences, ["knee_angle_r", "pelvis_tx"])
    bands = {s.name: s for s in fig.layout.shapes}
    knee = bands["rom:knee_angle_r"]
    lo, hi = model.ranges[model.coordinate_index("knee_angle_r")]
    assert (knee.y0, knee.y1) == pytest.approx((math.degrees(lo), math.degrees(hi)))
    assert (knee.y0, knee.y1) == pytest.approx((0.0, 120.0), abs=1e-3)
    assert knee.yref == "y" and knee.xref == "x domain"
    tx = bands["rom:pelvis_tx"]  # translational: metres, not converted
    assert (tx.y0, tx.y1) == pytest.approx(tuple(model.ranges[model.coordinate_index("pelvis_tx")]))
    y_range = fig.layout.yaxis.range
    assert y_range[0] <= knee.y0 and y_range[1] >= knee.y1  # the band is in view
    assert not any(
        s.name.startswith("rom:")
        for s in angles.angle_figure(model, sequences, ["knee_angle_r"], rom=False).layout.shapes
    )


def test_time_cursor_is_one_line_per_subplot_and_moves(model, sequences, truth):
    fig = angles.angle_figure(model, sequences, ["knee_angle_r", "hip_r"], cursor_time=0.05)
    angles.set_time_cursor(fig, truth.time[12])
    cursors = [s for s in fig.layout.shapes if s.name == angles.CURSOR_NAME]
    assert len(cursors) == 4
    assert [c.x0 for c in cursors] == pytest.approx([truth.time[12]] * 4)
    assert {c.xref for c in cursors} == {"x", "x2", "x3", "x4"}


def test_unknown_names_give_one_error_with_close_matches(model, sequences):
    with pytest.raises(KeyError, match="knee_angel_r.*did you mean knee_angle_r") as error:
        angles.angle_figure(model, sequences, ["knee_angel_r", "hip_r", "elbw_flex_r"])
    assert "elbow_flex_r" in str(error.value)


def test_bare_arrays_need_a_matching_time(model, truth, pred):
    fig = angles.angle_figure(model, {"a": pred}, ["knee_angle_r"])
    assert fig.layout.xaxis.title.text == "frame"
    with pytest.raises(ValueError, match="frames"):
        angles.angle_figure(model, {"truth": truth, "b": pred[:5]}, ["knee_angle_r"])


def test_error_summary_bars_are_mae_deg(model, truth, pred):
    estimates = {"network": pred, "IK": truth}
    fig = angles.error_summary_figure(model, truth, estimates)
    table = angles.error_table(model, truth, estimates)
    names = list(table.index)
    idx = [model.coordinate_index(n) for n in names]
    expected = mae_deg(pred[:, idx], truth.q[:, idx])
    assert [t.name for t in fig.data] == ["network", "IK"]
    assert list(fig.data[0].x) == names
    assert np.asarray(fig.data[0].y) == pytest.approx(expected)
    assert np.asarray(fig.data[0].y) == pytest.approx(OFFSET_DEG)  # the known answer
    assert np.asarray(fig.data[1].y) == pytest.approx(0.0)
    assert fig.layout.yaxis.title.text == "MAE (deg)"
    assert fig.data[0].marker.color != fig.data[1].marker.color
    assert "pelvis_tx" not in names and "knee_angle_r" in names
    with pytest.raises(ValueError, match="pelvis_tx"):
        angles.error_table(model, truth, estimates, ["pelvis_tx"])


# --------------------------------------------------------------------------- export


@pytest.fixture
def small_figure() -> go.Figure:
    return go.Figure(go.Scatter(x=[0, 1], y=[0, 1]), layout_title_text="tiny")


def test_save_figure_writes_offline_html_without_chromium(
    small_figure, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(export, "kaleido_installed", lambda: True)
    monkeypatch.setattr(export, "find_chromium", lambda: None)
    out = export.save_figure(small_figure, "knee_angles")
    assert out == Path("figures") / "knee_angles.html"
    html = out.read_text(encoding="utf-8")
    assert "plotly.js v" in html and len(html) > 1_000_000  # the library itself, inline
    assert "<script src=" not in html  # nothing fetched from a network
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "HTML" in lines[0] and "Chromium" in lines[0]
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["knee_angles.html"]


def test_save_figure_writes_png_when_kaleido_and_chromium_exist(
    small_figure, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(export, "png_unavailable_reason", lambda: None)
    monkeypatch.setattr(export, "find_chromium", lambda: "/usr/bin/chromium")
    monkeypatch.setattr(go.Figure, "to_image", lambda self, **kw: b"\x89PNG fake")
    out = export.save_figure(small_figure, tmp_path / "sub" / "fig")
    assert out == tmp_path / "sub" / "fig.png" and out.read_bytes() == b"\x89PNG fake"
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and "PNG" in line and "/usr/bin/chromium" in line


def test_save_figure_falls_back_to_html_when_png_export_fails(
    small_figure, tmp_path, monkeypatch, capsys
):
    def broken(self, **kw):
        raise RuntimeError("browser\ncrashed")

    monkeypatch.setattr(export, "png_unavailable_reason", lambda: None)
    monkeypatch.setattr(go.Figure, "to_image", broken)
    out = export.save_figure(small_figure, tmp_path / "fig.png")
    assert out.suffix == ".html" and out.exists()
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and "RuntimeError: browser crashed" in line


# --------------------------------------------------------------------------- explorer


def test_explorer_is_static_without_a_widget_front_end(model, sequences):
    assert not explorer.widget_frontend_available()
    view = explorer.explorer(model, sequences, ["knee_angle_r"])
    assert not view.live and view.widget is None
    assert len(view.skeleton.frames) == N_FRAMES
    assert len(view.angles.data) == len(sequences)
    view = explorer.explorer(model, sequences, ["knee_angle_r"], static=True, frame_step=5)
    assert len(view.skeleton.frames) == N_FRAMES // 5


def test_front_end_detection_reads_the_kernels_allow_stdin(monkeypatch):
    import IPython

    class Kernel:
        _allow_stdin = True

    class ZMQInteractiveShell:
        kernel = Kernel()

    monkeypatch.setattr(IPython, "get_ipython", lambda: ZMQInteractiveShell())
    assert explorer.widget_frontend_available()
    Kernel._allow_stdin = False  # nbclient (papermill, nbconvert) sends allow_stdin=False
    assert not explorer.widget_frontend_available()


def test_live_explorer_keeps_3d_and_angles_in_sync(model, sequences, truth):
    view = explorer.explorer(model, sequences, ["knee_angle_r", "hip_flexion_r"], static=False)
    assert view.live
    view.controls["frame"].value = 9
    cursors = [s for s in view.angles.layout.shapes if s.name == angles.CURSOR_NAME]
    assert len(cursors) == 2 and cursors[0].x0 == pytest.approx(truth.time[9])
    assert "0.09" in view.skeleton.layout.title.text
    view.controls["method:network"].value = False
    assert {t.name for t in view.skeleton.data} == {"OpenSim IK"}
    assert {t.name for t in view.angles.data} == {"OpenSim IK"}
    view.controls["coordinates"].value = ("ankle_angle_r",)
    assert [a.text for a in view.angles.layout.annotations] == ["ankle_angle_r"]
