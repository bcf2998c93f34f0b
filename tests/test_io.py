"""Tests of biokin_nb.osim.io: real OpenSim files, round trips, OpenSim reads ours, errors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from biokin_nb._files import atomic_write
from biokin_nb.osim._opensim import opensim
from biokin_nb.osim.io import (
    MarkerTrajectories,
    Table,
    read_table,
    read_trc,
    write_table,
    write_trc,
)

GAIT = "gait2354_walk"
GAIT_TRC = f"{GAIT}/subject01_walk1.trc"
GAIT_IK = f"{GAIT}/subject01_walk1_ik.mot"
RAJAGOPAL_TRC = "rajagopal_walk_opensim-core/markers_walk.trc"


# --------------------------------------------------------------------------- helpers


def make_table(n_rows: int = 5, nan: bool = False) -> Table:
    """A small table with awkward floats (tiny, huge, -0.0, 1/3)."""
    rng = np.random.default_rng(0)
    values = rng.normal(size=(n_rows, 4)) * [1.0, 1e-7, 1e5, 90.0]
    values[0, :] = [1e-300, -0.0, 1.0 / 3.0, 1e20]
    if nan:
        values[2, 1] = np.nan
    time = np.arange(n_rows) / 120.0
    header = {"source": "biokin_nb test", "DataType": "double"}
    columns = ["pelvis_tilt", "pelvis_tx", "knee_angle_r", "/jointset/hip_r/hip_flexion_r/value"]
    return Table(time, columns, values, True, "Coordinates", header)


def make_markers(n_frames: int = 6, units: str = "m") -> MarkerTrajectories:
    """Three markers at 100 Hz with gaps: a whole frame of one marker, and a run at the end."""
    rng = np.random.default_rng(1)
    positions = rng.uniform(-1.5, 1.5, size=(n_frames, 3, 3))
    positions[1, 0] = np.nan
    positions[-2:, 2] = np.nan
    return MarkerTrajectories(
        np.arange(n_frames) / 100.0, ["R.ASIS", "L ASIS", "S2"], positions, 100.0, units
    )


def write_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def assert_tables_equal(a: Table, b: Table) -> None:
    np.testing.assert_array_equal(a.time, b.time)
    np.testing.assert_array_equal(a.values, b.values)
    assert (a.columns, a.in_degrees, a.name, a.header) == (
        b.columns,
        b.in_degrees,
        b.name,
        b.header,
    )


def assert_markers_close(a: MarkerTrajectories, b: MarkerTrajectories) -> None:
    np.testing.assert_array_equal(a.time, b.time)
    np.testing.assert_allclose(a.positions, b.positions, rtol=1e-14, atol=0)  # NaNs must match
    assert (a.names, a.rate) == (b.names, b.rate)


def osim_matrix(table) -> np.ndarray:
    """An OpenSim TimeSeriesTable's data as numpy (keeping the temporaries alive)."""
    matrix = table.getMatrix()
    return np.array(matrix.to_numpy())


def osim_vec3_positions(table) -> np.ndarray:
    """An OpenSim TimeSeriesTableVec3's data as (T, M, 3) numpy."""
    flat = table.flatten()
    values = osim_matrix(flat)
    return values.reshape(table.getNumRows(), table.getNumColumns(), 3)


# --------------------------------------------------------------------------- validation files


def test_reads_every_validation_file_as_opensim_does(validation_dir: Path) -> None:
    osim = opensim()
    files = sorted(p for p in validation_dir.rglob("*") if p.suffix in (".mot", ".sto", ".trc"))
    assert len(files) >= 16
    for path in files:
        if path.suffix == ".trc":
            ours = read_trc(path)
            theirs = osim.TimeSeriesTableVec3(str(path))
            assert ours.names == list(theirs.getColumnLabels()), path
            np.testing.assert_array_equal(ours.time, np.array(theirs.getIndependentColumn()))
            theirs_mm = osim_vec3_positions(theirs)
            np.testing.assert_allclose(ours.positions * 1000.0, theirs_mm, rtol=1e-15)
        else:
            ours = read_table(path)
            theirs = osim.TimeSeriesTable(str(path))
            assert ours.columns == list(theirs.getColumnLabels()), path
            np.testing.assert_array_equal(ours.time, np.array(theirs.getIndependentColumn()))
            np.testing.assert_array_equal(ours.values, osim_matrix(theirs))


def test_gait2354_ik_mot_hand_checked(validation_dir: Path) -> None:
    table = read_table(validation_dir / GAIT_IK)
    assert (table.name, table.in_degrees, table.header) == ("Coordinates", True, {})
    assert table.values.shape == (73, 23)
    assert table.columns[0] == "pelvis_tilt" and table.columns[-1] == "lumbar_rotation"
    assert table.time[0] == 0.4 and table.time[-1] == 1.6
    assert table.column("pelvis_tilt")[0] == 4.84455933
    assert table.column("pelvis_tilt")[-1] == 5.98336275
    assert table.column("lumbar_bending")[-1] == -0.86802432
    assert table.column("lumbar_rotation")[-1] == -5.74240571


def test_marker_errors_sto_hand_checked(validation_dir: Path) -> None:
    path = validation_dir / GAIT / "generated_opensim4.6" / "subject01_ik_marker_errors.sto"
    table = read_table(path)
    assert (table.name, table.in_degrees) == ("Model Marker Errors from IK", False)
    assert table.columns == ["total_squared_error", "marker_error_RMS", "marker_error_max"]
    np.testing.assert_array_equal(table.values[0], [0.01438472, 0.02154120, 0.07913403])
    np.testing.assert_array_equal(table.values[-1], [0.01382654, 0.02111912, 0.07974038])


def test_scale_output_mot_with_path_labels(validation_dir: Path) -> None:
    table = read_table(
        validation_dir / "rajagopal2016_walk/generated_opensim4.6/scale_output_walk.mot"
    )
    assert (table.name, table.in_degrees, table.values.shape) == ("static pose", False, (1, 204))
    assert table.columns[-1] == "/forceset/vasmed_l/fiber_length"
    assert table.column("/jointset/ground_pelvis/pelvis_tilt/value")[0] == -0.02513556


def test_gait2354_trc_hand_checked(validation_dir: Path) -> None:
    markers = read_trc(validation_dir / GAIT_TRC)  # mm, no gaps, a trailing tab on every row
    assert (markers.rate, markers.units, markers.positions.shape) == (60.0, "mm", (151, 41, 3))
    assert markers.names[:3] == ["R.ASIS", "L.ASIS", "V.Sacral"]
    assert markers.time[1] == 0.017 and markers.time[-1] == 2.5
    np.testing.assert_allclose(
        markers.marker("R.ASIS")[0], [0.61724762, 1.05527502, 0.17078198], rtol=1e-15
    )
    np.testing.assert_allclose(
        markers.marker("L.ASIS")[-1], [0.62118549, 1.03677747, -0.08961594], rtol=1e-15
    )
    assert not np.isnan(markers.positions).any()


def test_rajagopal_trcs_hand_checked(validation_dir: Path) -> None:
    walk = read_trc(validation_dir / RAJAGOPAL_TRC)  # header values separated by double tabs
    assert (walk.rate, walk.units, walk.positions.shape) == (100.0, "mm", (238, 41, 3))
    assert walk.time[-1] == 2.37
    np.testing.assert_allclose(
        walk.marker("R.Shoulder")[0], [-0.65263, 1.529542, -0.09452], rtol=1e-15
    )
    np.testing.assert_allclose(
        walk.marker("R.Shoulder")[-1], [2.305031, 1.522685, -0.100799], rtol=1e-15
    )
    static = read_trc(validation_dir / "rajagopal2016_walk/ExpData/static_walk_1.trc")
    assert static.positions.shape == (287, 64, 3) and static.names[-1] == "MidClavicle"


# --------------------------------------------------------------------------- other readable formats


OLD_MOT = """name subject01_walk1_ik.mot
datacolumns 3
datarows 2
range 0.4 0.5
endheader
time  knee_angle_r   ankle_angle_r
0.4   -54.9   2.5
0.5   -50.25  2.75
"""


def test_reads_old_mot_format_whitespace_separated(tmp_path: Path) -> None:
    table = read_table(write_text(tmp_path / "old.mot", OLD_MOT))
    assert (table.name, table.in_degrees, table.header) == ("subject01_walk1_ik.mot", False, {})
    assert table.columns == ["knee_angle_r", "ankle_angle_r"]
    np.testing.assert_array_equal(table.values, [[-54.9, 2.5], [-50.25, 2.75]])
    np.testing.assert_array_equal(table.time, [0.4, 0.5])


def test_reads_sto_written_by_opensim_timeseriestable(tmp_path: Path) -> None:
    osim = opensim()
    table = osim.TimeSeriesTable()
    table.setColumnLabels(["a", "b"])
    for t, row in [(0.0, (1.0, np.nan)), (0.5, (1e-300, 1.0 / 3.0))]:
        table.appendRow(t, osim.RowVector(list(row)))
    table.addTableMetaDataString("inDegrees", "no")
    osim.STOFileAdapter.write(table, str(tmp_path / "os.sto"))  # no name line, version=3
    ours = read_table(tmp_path / "os.sto")
    assert (ours.name, ours.in_degrees, ours.columns) == ("", False, ["a", "b"])
    assert ours.header["DataType"] == "double" and "version" not in ours.header
    np.testing.assert_array_equal(ours.values, [[1.0, np.nan], [1e-300, 1.0 / 3.0]])


def test_reads_trc_written_by_opensim_with_nan_gaps(tmp_path: Path) -> None:
    osim = opensim()
    table = osim.TimeSeriesTableVec3()
    table.setColumnLabels(["A", "B"])
    for i in range(3):
        b = osim.Vec3(np.nan, np.nan, np.nan) if i == 1 else osim.Vec3(4.0, 5.0, 6.0)
        row = osim.RowVectorVec3(2)
        row[0], row[1] = osim.Vec3(1.5 + i, 2.0, 3.0), b
        table.appendRow(0.1 * i, row)
    table.addTableMetaDataString("DataRate", "100")
    table.addTableMetaDataString("Units", "mm")
    osim.TRCFileAdapter.write(table, str(tmp_path / "os.trc"))  # "nan", trailing tabs
    markers = read_trc(tmp_path / "os.trc")
    assert (markers.names, markers.units, markers.rate) == (["A", "B"], "mm", 100.0)
    assert np.isnan(markers.marker("B")[1]).all()
    np.testing.assert_array_equal(markers.marker("A")[2], [0.0035, 0.002, 0.003])


VICON_TRC = (
    "PathFileType\t4\t(X/Y/Z)\tC:\\vicon\\trial 1.trc\r\n"
    "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\t"
    "OrigNumFrames\r\n"
    "200.00\t200.00\t3\t2\tm\t200.00\t10\t3\r\n"
    "Frame#\tTime\tLASI\t\t\tRASI\t\t\t\r\n"
    "\t\tX1\tY1\tZ1\tX2\tY2\tZ2\t\r\n"
    "10\t0.000\t\t\t\t0.1\t0.2\t0.3\t\r\n"
    "11\t0.005\t1.0\t2.0\t3.0\t\t\t\t\r\n"
    "12\t0.010\t1.5\t2.5\t3.5\tNaN\tNaN\tNaN\r\n"
)


def test_reads_vicon_style_trc_with_empty_gaps(tmp_path: Path) -> None:
    markers = read_trc(write_text(tmp_path / "vicon.trc", VICON_TRC))  # CRLF, no blank line
    assert (markers.names, markers.units, markers.rate) == (["LASI", "RASI"], "m", 200.0)
    expected = np.array([[[np.nan] * 3, [0.1, 0.2, 0.3]], [[1, 2, 3], [np.nan] * 3]])
    np.testing.assert_array_equal(markers.positions[:2], expected)
    assert np.isnan(markers.positions[2, 1]).all()
    np.testing.assert_array_equal(markers.time, [0.0, 0.005, 0.01])


def test_reads_trc_without_frame_column(tmp_path: Path) -> None:
    lines = VICON_TRC.replace("Frame#\t", "").splitlines()
    lines = lines[:4] + [line.split("\t", 1)[1] for line in lines[4:]]
    markers = read_trc(write_text(tmp_path / "noframe.trc", "\n".join(lines)))
    assert markers.positions.shape == (3, 2, 3) and markers.positions[1, 0, 2] == 3.0


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("suffix", [".mot", ".sto"])
def test_table_round_trip_is_exact(tmp_path: Path, suffix: str) -> None:
    table = make_table()
    write_table(tmp_path / f"t{suffix}", table)
    assert_tables_equal(read_table(tmp_path / f"t{suffix}"), table)


def test_table_round_trip_with_nan_when_allowed(tmp_path: Path) -> None:
    table = make_table(nan=True)
    write_table(tmp_path / "nan.sto", table, allow_nan=True)
    assert_tables_equal(read_table(tmp_path / "nan.sto"), table)


def test_table_empty_name_written_as_file_stem(tmp_path: Path) -> None:
    table = make_table()
    table.name = ""
    write_table(tmp_path / "walk_ik.mot", table)
    assert read_table(tmp_path / "walk_ik.mot").name == "walk_ik"


def test_validation_files_round_trip(validation_dir: Path, tmp_path: Path) -> None:
    table = read_table(validation_dir / GAIT_IK)
    write_table(tmp_path / "ik.mot", table)
    assert_tables_equal(read_table(tmp_path / "ik.mot"), table)
    markers = read_trc(validation_dir / RAJAGOPAL_TRC)
    write_trc(tmp_path / "walk.trc", markers, units="mm")
    assert_markers_close(read_trc(tmp_path / "walk.trc"), markers)


@pytest.mark.parametrize("units", ["mm", "cm", "m"])
def test_trc_round_trip_with_gaps(tmp_path: Path, units: str) -> None:
    markers = make_markers()
    write_trc(tmp_path / "m.trc", markers, units=units)
    back = read_trc(tmp_path / "m.trc")
    assert back.units == units
    assert_markers_close(back, markers)
    if units == "m":
        np.testing.assert_array_equal(back.positions, markers.positions)


def test_writers_leave_no_temporary_files(tmp_path: Path) -> None:
    write_table(tmp_path / "t.mot", make_table())
    write_trc(tmp_path / "m.trc", make_markers())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.trc", "t.mot"]


# ------------------------------------------------------------------ OpenSim reads our files


@pytest.mark.parametrize("suffix", [".mot", ".sto"])
def test_opensim_storage_reads_our_table(tmp_path: Path, suffix: str) -> None:
    osim = opensim()
    table = make_table()
    path = tmp_path / f"t{suffix}"
    write_table(path, table)
    storage = osim.Storage(str(path))
    labels = storage.getColumnLabels()
    assert [labels.get(i) for i in range(labels.getSize())] == ["time", *table.columns]
    assert (storage.getSize(), storage.isInDegrees(), storage.getName()) == (5, True, "Coordinates")
    for name in table.columns:
        column = osim.ArrayDouble()
        storage.getDataColumn(name, column)
        np.testing.assert_array_equal(
            [column.get(i) for i in range(column.getSize())], table.column(name)
        )
    times = osim.ArrayDouble()
    storage.getTimeColumn(times)
    np.testing.assert_array_equal([times.get(i) for i in range(times.getSize())], table.time)


@pytest.mark.parametrize("suffix", [".mot", ".sto"])
def test_opensim_timeseriestable_reads_our_table(tmp_path: Path, suffix: str) -> None:
    osim = opensim()
    table = make_table(nan=True)
    path = tmp_path / f"t{suffix}"
    write_table(path, table, allow_nan=True)
    theirs = osim.TimeSeriesTable(str(path))
    assert list(theirs.getColumnLabels()) == table.columns
    np.testing.assert_array_equal(np.array(theirs.getIndependentColumn()), table.time)
    np.testing.assert_array_equal(osim_matrix(theirs), table.values)
    assert theirs.getTableMetaDataAsString("inDegrees") == "yes"
    assert theirs.getTableMetaDataAsString("source") == "biokin_nb test"


@pytest.mark.parametrize("units", ["mm", "m"])
def test_opensim_timeseriestablevec3_reads_our_trc(tmp_path: Path, units: str) -> None:
    osim = opensim()
    markers = make_markers()
    write_trc(tmp_path / "m.trc", markers, units=units)
    theirs = osim.TimeSeriesTableVec3(str(tmp_path / "m.trc"))
    assert list(theirs.getColumnLabels()) == markers.names
    assert theirs.getTableMetaDataAsString("Units") == units
    assert float(theirs.getTableMetaDataAsString("DataRate")) == 100.0
    np.testing.assert_array_equal(np.array(theirs.getIndependentColumn()), markers.time)
    scale = {"mm": 1000.0, "m": 1.0}[units]
    np.testing.assert_allclose(osim_vec3_positions(theirs) / scale, markers.positions, rtol=1e-14)


@pytest.mark.parametrize("units", ["mm", "m"])
def test_opensim_markerdata_reads_our_trc(tmp_path: Path, units: str) -> None:
    osim = opensim()
    markers = make_markers()
    write_trc(tmp_path / "m.trc", markers, units=units)
    data = osim.MarkerData(str(tmp_path / "m.trc"))
    assert (data.getNumFrames(), data.getNumMarkers(), data.getDataRate()) == (6, 3, 100.0)
    assert data.getUnits().getAbbreviation() == units
    assert [data.getMarkerNames().get(i) for i in range(3)] == markers.names
    scale = {"mm": 1000.0, "m": 1.0}[units]
    for i in range(6):
        frame = data.getFrame(i)
        assert frame.getFrameTime() == markers.time[i]
        got = [[frame.getMarker(j)[k] for k in range(3)] for j in range(3)]
        np.testing.assert_allclose(np.array(got) / scale, markers.positions[i], rtol=1e-14)


def test_opensim_ik_tool_same_result_from_our_trc_in_metres(
    validation_dir: Path, tmp_path: Path
) -> None:
    """OpenSim IK on our metre-unit rewrite of the gait2354 trial matches IK on the original."""
    osim = opensim()
    folder = validation_dir / GAIT
    write_trc(tmp_path / "walk_m.trc", read_trc(validation_dir / GAIT_TRC), units="m")

    def run_ik(trc: Path, out: Path) -> Table:
        tool = osim.InverseKinematicsTool(str(folder / "subject01_Setup_IK.xml"))
        model = osim.Model(str(folder / "subject01_simbody.osim"))  # must outlive the run
        tool.setModel(model)
        tool.set_accuracy(1e-9)
        tool.setMarkerDataFileName(str(trc))
        tool.setStartTime(0.4)
        tool.setEndTime(0.45)
        tool.set_report_errors(False)
        tool.setResultsDir(str(tmp_path))
        tool.setOutputMotionFileName(str(out))
        assert tool.run()
        return read_table(out)

    original = run_ik(validation_dir / GAIT_TRC, tmp_path / "original.mot")
    ours = run_ik(tmp_path / "walk_m.trc", tmp_path / "ours.mot")
    assert original.values.shape == (4, 23)
    np.testing.assert_allclose(ours.values, original.values, atol=1e-4)  # deg and m


# --------------------------------------------------------------------------- errors


def test_missing_files_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.mot"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        read_table(missing)
    with pytest.raises(FileNotFoundError, match="nope.trc"):
        read_trc(tmp_path / "nope.trc")
    with pytest.raises(FileNotFoundError, match="folder .* does not exist"):
        write_table(tmp_path / "no_folder" / "t.mot", make_table())


MOT = (
    "Coordinates\nversion=1\nnRows=2\nnColumns=3\ninDegrees=yes\nendheader\n"
    "time\ta\tb\n0.0\t1.0\t2.0\n0.1\t3.0\t4.0\n"
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (MOT.replace("endheader\n", ""), r"bad\.mot: no 'endheader' line"),
        (MOT.replace("nRows=2", "nRows=two"), r"bad\.mot: header nRows='two' is not an integer"),
        (
            MOT.replace("inDegrees=yes", "inDegrees=maybe"),
            "inDegrees='maybe' should be 'yes' or 'no'",
        ),
        (MOT.replace("time\ta", "t\ta"), r"bad\.mot, line 7: first column label is 't'"),
        (
            MOT.replace("0.1\t3.0\t4.0", "0.1\t3.0"),
            r"bad\.mot, line 9: 2 values but 3 column labels",
        ),
        (MOT.replace("0.1\t3.0\t4.0", "0.1\t3.0\t4.0\t5.0"), r"line 9: 4 values but 3"),
        (MOT.replace("3.0", "3,0"), r"bad\.mot, line 9: '3,0' is not a number"),
        (MOT.replace("nRows=2", "nRows=3"), r"header says nRows=3 but the file has 2 data rows"),
        (MOT.replace("nColumns=3", "nColumns=4"), r"nColumns=4 but the file has 3 labels"),
        (
            MOT.replace("0.1\t3.0", "0.0\t3.0"),
            r"line 9: time 0\.0 is not after the previous time 0\.0",
        ),
        (MOT.replace("0.1\t3.0", "nan\t3.0"), r"line 9: time nan is not a finite number"),
    ],
)
def test_read_table_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_table(write_text(tmp_path / "bad.mot", text))


TRC = (
    "PathFileType\t4\t(X/Y/Z)\tbad.trc\n"
    "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames\n"
    "100\t100\t2\t1\tmm\t100\t1\t2\n"
    "Frame#\tTime\tA\t\t\n"
    "\t\tX1\tY1\tZ1\n"
    "\n"
    "1\t0.00\t1.0\t2.0\t3.0\n"
    "2\t0.01\t4.0\t5.0\t6.0\n"
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (TRC.replace("PathFileType", "Path"), r"bad\.trc, line 1: not a \.trc file"),
        (TRC.replace("\tmm\t", "\t"), r"line 2: malformed \.trc header.*8 keys, 7 values"),
        (TRC.replace("\tmm\t", "\tin\t"), r"line 3: Units='in'; expected one of mm, cm, m"),
        (TRC.replace("100\t100", "fast\t100"), r"DataRate='fast' is not a number"),
        (
            TRC.replace("\t2\t1\t", "\t2\t2\t"),
            r"header says NumMarkers=2 but the file has 1 marker",
        ),
        (
            TRC.replace("\t2\t1\t", "\t3\t1\t"),
            r"header says NumFrames=3 but the file has 2 data rows",
        ),
        (
            TRC.replace("Frame#\tTime", "Frame#\tT"),
            r"line 4: expected column labels 'Frame#', 'Time'",
        ),
        (
            TRC.replace("5.0\t6.0", "5.0"),
            r"bad\.trc, line 8: 4 fields but the header's markers need 5",
        ),
        (TRC.replace("6.0\n", "6.0\t7.0\n"), r"line 8: 6 fields but the header's markers need 5"),
        (TRC.replace("5.0", "5.O"), r"bad\.trc, line 8: '5\.O' is not a number"),
        (TRC.replace("0.01", "0.00"), r"bad\.trc, line 8: time 0\.0 is not after the previous"),
    ],
)
def test_read_trc_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_trc(write_text(tmp_path / "bad.trc", text))


def test_table_shape_and_time_errors() -> None:
    with pytest.raises(ValueError, match=r"shape \(T, N\) = \(3, 2\).*got \(3, 3\)"):
        Table(np.arange(3.0), ["a", "b"], np.zeros((3, 3)), False)
    with pytest.raises(
        ValueError, match=r"time\[2\]: time 0\.5 is not after the previous time 1\.0"
    ):
        Table([0.0, 1.0, 0.5], ["a"], np.zeros((3, 1)), False)
    with pytest.raises(ValueError, match=r"time must have shape \(T,\), got \(3, 1\)"):
        Table(np.zeros((3, 1)), ["a"], np.zeros((3, 1)), False)


def test_write_table_errors(tmp_path: Path) -> None:
    table = make_table()
    table.columns.append("extra")  # mutated after construction: checked again on writing
    with pytest.raises(ValueError, match=r"shape \(T, N\) = \(5, 5\).*got \(5, 4\)"):
        write_table(tmp_path / "t.mot", table)
    with pytest.raises(
        ValueError, match=r"values\[2, 1\] \(column 'pelvis_tx'\) is nan.*allow_nan=True"
    ):
        write_table(tmp_path / "t.mot", make_table(nan=True))
    bad_label = Table([0.0], ["knee angle"], [[1.0]], False)
    with pytest.raises(ValueError, match="column label 'knee angle' cannot be written"):
        write_table(tmp_path / "t.mot", bad_label)
    reserved = Table([0.0], ["a"], [[1.0]], False, header={"inDegrees": "yes"})
    with pytest.raises(ValueError, match=r"\['inDegrees'\].*set Table.in_degrees"):
        write_table(tmp_path / "t.mot", reserved)
    with pytest.raises(ValueError, match="must not contain '='"):
        write_table(tmp_path / "t.mot", Table([0.0], ["a"], [[1.0]], False, name="a=b"))
    assert not list(tmp_path.iterdir())


def test_marker_shape_and_name_errors() -> None:
    with pytest.raises(ValueError, match=r"shape \(T, M, 3\) = \(6, 3, 3\).*got \(6, 9\)"):
        MarkerTrajectories(np.arange(6.0), ["a", "b", "c"], np.zeros((6, 9)), 100.0)
    with pytest.raises(
        ValueError, match=r"\(6, 2, 3\) for 6 times and 2 marker names, got \(6, 3, 3\)"
    ):
        MarkerTrajectories(np.arange(6.0), ["a", "b"], np.zeros((6, 3, 3)), 100.0)
    with pytest.raises(ValueError, match="rate must be a positive number of Hz, got 0.0"):
        MarkerTrajectories(np.arange(6.0), ["a"], np.zeros((6, 1, 3)), 0.0)
    with pytest.raises(ValueError, match=r"time\[1\]: time 0\.0 is not after"):
        MarkerTrajectories(np.zeros(6), ["a"], np.zeros((6, 1, 3)), 100.0)


def test_write_trc_errors(tmp_path: Path) -> None:
    markers = make_markers()
    markers.positions = markers.positions[..., :2]  # mutated after construction
    with pytest.raises(ValueError, match=r"shape \(T, M, 3\) = \(6, 3, 3\).*got \(6, 3, 2\)"):
        write_trc(tmp_path / "m.trc", markers)
    with pytest.raises(ValueError, match="units must be one of .*got 'inch'"):
        write_trc(tmp_path / "m.trc", make_markers(), units="inch")
    tabbed = MarkerTrajectories([0.0], ["a\tb"], np.zeros((1, 1, 3)), 100.0)
    with pytest.raises(ValueError, match=r"marker name 'a\\tb' cannot be written"):
        write_trc(tmp_path / "m.trc", tabbed)
    assert not list(tmp_path.iterdir())


def test_lookup_errors_suggest_close_names() -> None:
    with pytest.raises(
        KeyError, match=r"no column named 'knee_angle_l'; did you mean \['knee_angle_r'\]"
    ):
        make_table().column("knee_angle_l")
    with pytest.raises(KeyError, match=r"no marker named 'R\.ASI'; did you mean \['R\.ASIS'"):
        make_markers().marker("R.ASI")
    with pytest.raises(KeyError, match=r"no marker named 'zzz'; available: \['R\.ASIS'"):
        make_markers().marker("zzz")


# --------------------------------------------------------------------------- atomic_write


def test_atomic_write_keeps_old_file_on_error(tmp_path: Path) -> None:
    target = write_text(tmp_path / "out.txt", "old")
    with pytest.raises(RuntimeError, match="interrupted"), atomic_write(target) as file:
        file.write("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_write_replaces_on_success(tmp_path: Path) -> None:
    target = write_text(tmp_path / "out.bin", "old")
    with atomic_write(target, "wb") as file:
        file.write(b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
    with pytest.raises(ValueError, match="mode must be one of"):
        with atomic_write(target, "a"):
            pass
