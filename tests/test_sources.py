"""Series sources: the course's synthetic series and CSV columns with their gap policies."""

import numpy as np
import pandas as pd
import pytest

from data.errors import UserError
from data.sources import csv_series, synthetic_series


def test_synthetic_series_is_the_course_series():
    series = synthetic_series()
    assert series.shape == (1461,) and series.dtype == np.float32
    np.testing.assert_array_equal(series, synthetic_series())
    noiseless = synthetic_series(noise_level=0.0)
    assert noiseless[0] == pytest.approx(10.0 + 40.0)  # baseline + amplitude * cos(0)
    assert noiseless[365] == pytest.approx(10.0 + 0.05 * 365 + 40.0, rel=1e-5)


def test_csv_column_in_time_order(tmp_path):
    path = tmp_path / "s.csv"
    pd.DataFrame({"t": ["2020-01-03", "2020-01-01", "2020-01-02"], "v": [3.0, 1.0, 2.0]}).to_csv(path, index=False)
    np.testing.assert_array_equal(csv_series(str(path), "v", "t"), [1.0, 2.0, 3.0])


@pytest.fixture
def gappy(tmp_path):
    path = tmp_path / "gaps.csv"
    frame = pd.DataFrame({"t": ["2020-01-01", "2020-01-02", "2020-01-04", "2020-01-05"], "v": [1.0, None, 4.0, 5.0]})
    frame.to_csv(path, index=False)
    return str(path)


def test_gap_policies(gappy):
    with pytest.raises(UserError, match="data.gaps=interpolate"):
        csv_series(gappy, "v", "t", "error")
    np.testing.assert_allclose(csv_series(gappy, "v", "t", "interpolate"), [1, 2, 3, 4, 5])
    np.testing.assert_allclose(csv_series(gappy, "v", "t", "drop"), [1, 4, 5])
    np.testing.assert_allclose(csv_series(gappy, "v", None, "drop"), [1, 4, 5])


@pytest.mark.parametrize(
    "content,column,field",
    [
        (None, "v", "no such file"),
        ("v\n1\nabc\n3\n", "v", "non-numeric"),
        ("v\n1\n2\n", "w", "data.column='w' is not a column"),
        (b"v\n\xff\xfe\xfa\x80\n", "v", "cannot be read as CSV"),
    ],
)
def test_bad_csv_names_the_problem(tmp_path, content, column, field):
    path = tmp_path / "bad.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(UserError, match=field):
        csv_series(str(path), column)


@pytest.mark.parametrize(
    "data,points,season,first,last",
    [("co2", 2284, 52, 316.1, 371.5), ("elnino", 732, 12, 23.11, 22.07)],
)
def test_shipped_real_series_plan_with_every_shipped_space(data, points, season, first, last, capsys):
    """`data=co2` / `data=elnino` load from the repository (no network), gap-free, and every shipped space
    fits them with its seasonal context."""
    from search.plan.planning import Request, make_plan
    from tests.test_spaces import compose_config

    for space in ("conv_lstm", "dnn", "linear", "lstm", "gru", "rnn"):
        cfg = compose_config(f"+space={space}", f"data={data}")
        plan = make_plan(Request.of(cfg))
        assert len(plan.series) == points and np.all(np.isfinite(plan.series))
        assert plan.series[0] == pytest.approx(first) and plan.series[-1] == pytest.approx(last)
        assert cfg.data.season_length == season and plan.layout.test_size == cfg.data.test_size
        assert set(candidates_of(plan.specs["seasons"])) == {0, 1, 2}
        assert "profile" in candidates_of(plan.specs["scaling"])
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    # Their seasonal context and `profile` scaling stay (they have a season, and its average change forecasts better
    # than naive); only `seasonal` scaling is left out, since at horizon 1 seasonal naive forecasts their past worse
    # than naive does (`planning.narrowed_to_series`). (The defaults' other note: no backtest, as the ensemble averages
    # every candidate.)
    scaling = [note for note in notes if not note.startswith("note: no backtest")]
    assert len(scaling) == 6 and all(note.startswith("note: space.scaling: seasonal left out") for note in scaling)
    assert not any("profile left out" in note for note in scaling)


def candidates_of(spec):
    from search.plan.space import candidates

    return candidates(spec)


def test_timestamps_with_changing_utc_offsets_are_one_utc_axis(tmp_path):
    """Hourly local time across a daylight-saving switch (+01:00 then +02:00): regular in UTC, no gap, no error."""
    stamps = pd.date_range("2021-03-28 00:00", periods=6, freq="h", tz="Europe/Berlin")
    path = tmp_path / "local.csv"
    pd.DataFrame({"t": [stamp.isoformat() for stamp in stamps], "v": range(6)}).to_csv(path, index=False)
    assert "+01:00" in path.read_text() and "+02:00" in path.read_text()
    np.testing.assert_array_equal(csv_series(str(path), "v", "t"), np.arange(6, dtype=np.float32))


def test_daily_local_dates_across_a_daylight_saving_switch_keep_their_calendar_and_gaps(tmp_path):
    """Local midnights are 23 h apart across the switch: a daily series is read on its calendar, so two missing
    days are two gaps (interpolated here), and every real value stays where it was."""
    stamps = pd.date_range("2021-03-20", periods=20, freq="D", tz="Europe/Berlin")
    frame = pd.DataFrame({"t": [stamp.isoformat() for stamp in stamps], "v": range(20)}).drop(index=[12, 13])
    path = tmp_path / "daily.csv"
    frame.to_csv(path, index=False)
    np.testing.assert_allclose(csv_series(str(path), "v", "t", gaps="interpolate"), np.arange(20, dtype=np.float32))
    with pytest.raises(UserError, match="data.gaps=interpolate"):
        csv_series(str(path), "v", "t")
