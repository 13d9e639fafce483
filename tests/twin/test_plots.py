"""Figures of a run (twin.plots): the block-wise binning against numpy, and the written PNGs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from twin.plots import _event_window, plot_run, reduce_for_plots


def _dataset(n: int = 10_000, seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    t = np.datetime64("2026-07-15T00:00:00", "ns") + np.arange(n) * np.timedelta64(1, "s")
    islands, halls, turbines, bess, ties = ["a", "b"], ["h1", "h2"], ["t1", "t2", "t3"], ["b1"], ["g1"]

    def series(*shape):
        return (rng.normal(size=(n, *shape)).cumsum(axis=0) * 0.01).astype(np.float32)

    f = 60.0 + series(2)
    f[5000:5010, 1] = np.nan  # a dead island for ten seconds
    ds = xr.Dataset(
        {
            "f_hz": (("time", "island"), f),
            "p_turbine_mw": (("time", "turbine"), 30.0 + series(3)),
            "p_grid_mw": (("time", "grid_tie"), series(1)),
            "p_bess_mw": (("time", "bess"), series(1)),
            "soc_bess": (("time", "bess"), 0.5 + series(1)),
            "p_it_mw": (("time", "hall"), 50.0 + series(2)),
            "p_cooling_mw": (("time", "hall"), 10.0 + series(2)),
            "p_unserved_mw": (("time", "island"), np.zeros((n, 2), np.float32)),
            "t_gpu_c": (("time", "hall"), 60.0 + series(2)),
            "t_coolant_c": (("time", "hall"), 30.0 + series(2)),
            "throttle": (("time", "hall"), np.ones((n, 2), np.float32)),
            "t_amb_c": (("time",), 30.0 + series()),
        },
        coords={"time": t, "island": islands, "hall": halls, "turbine": turbines, "bess": bess, "grid_tie": ties},
        attrs={"title": "test", "island_members": json.dumps({"a": {"turbine": ["t1", "t2"], "hall": ["h1"], "grid_tie": ["g1"]},
                                                              "b": {"turbine": ["t3"], "hall": ["h2"], "bess": ["b1"]}}),
               "scenario_doc": json.dumps({"events": [{"at": "01:00:00", "do": "trip", "target": "t1"}]})},
    )
    return ds


@pytest.mark.parametrize("block", [1_000, 3_000, 20_000])
def test_binning_matches_numpy_for_any_read_block(block):
    ds = _dataset()
    r = reduce_for_plots(ds, max_bins=100, block=block)  # bins of 100 s; blocks rounded to whole bins
    x = ds.p_turbine_mw.values.reshape(100, 100, 3)
    np.testing.assert_allclose(r.p_turbine_mw.values, x.mean(axis=1), rtol=1e-6)
    np.testing.assert_array_equal(r.p_turbine_mw_min.values, x.min(axis=1))
    np.testing.assert_array_equal(r.p_turbine_mw_max.values, x.max(axis=1))
    assert (r.time.values == ds.time.values[::100]).all()
    # NaNs are skipped: the bin holding the dead seconds is the mean of the other 90
    f = ds.f_hz.values[:, 1].reshape(100, 100)
    assert r.f_hz.values[50, 1] == pytest.approx(np.nanmean(f[50]), rel=1e-6)
    assert r.attrs["bin_s"] == 100.0


def test_a_partial_last_bin_and_a_short_run():
    ds = _dataset(n=1_050)
    r = reduce_for_plots(ds, max_bins=100)  # w = 11: 95 full bins and one of 5 s
    assert r.sizes["time"] == 96
    assert r.t_amb_c_max.values[-1] == ds.t_amb_c.values[-5:].max()
    short = reduce_for_plots(ds, max_bins=5_000)  # shorter than max_bins: full resolution
    np.testing.assert_array_equal(short.f_hz_min.values, ds.f_hz.values)


def test_per_minute_variables_are_binned_from_their_extremes():
    ds = _dataset(n=6_000)
    m = ds.p_it_mw.coarsen(time=60, coord_func="min")  # labelled by the minute's start, as the recorder does
    mins = xr.Dataset({"p_it_mw": m.mean().rename(time="minute"), "p_it_mw_min": m.min().rename(time="minute"),
                       "p_it_mw_max": m.max().rename(time="minute")})
    only_minutes = ds.drop_vars("p_it_mw").merge(mins)
    r = reduce_for_plots(only_minutes, max_bins=10)  # 6,000 s in bins of 600 s: 10 minutes each
    x = ds.p_it_mw.values.reshape(10, 600, 2)
    assert (r.time.values == ds.time.values[::600]).all()
    np.testing.assert_allclose(r.p_it_mw_min.values, x.min(axis=1))
    np.testing.assert_allclose(r.p_it_mw_max.values, x.max(axis=1))
    np.testing.assert_allclose(r.p_it_mw.values, x.mean(axis=1), rtol=1e-5)
    # bins that do not hold whole minutes (w = 7 s): each minute's values are held over its seconds
    fine = reduce_for_plots(only_minutes, max_bins=1_000)
    assert fine.attrs["bin_s"] == 60.0  # rounded up to whole minutes
    np.testing.assert_allclose(fine.p_it_mw_max.values, ds.p_it_mw.values.reshape(100, 60, 2).max(axis=1))
    short = reduce_for_plots(only_minutes, max_bins=10_000)  # full-rate resolution, minutes held
    assert short.sizes["time"] == 6_000 and not np.isnan(short.p_it_mw.values).any()
    np.testing.assert_allclose(short.p_it_mw_min.values[59], ds.p_it_mw.values[:60].min(axis=0))


def test_event_window_holds_the_one_second_values_around_the_first_event():
    ds = _dataset()
    w = _event_window(ds)
    assert w.t_rel_s.values[0] == -30 and w.t_rel_s.values[-1] == 180
    np.testing.assert_array_equal(w.f_hz.values, ds.f_hz.values[3600 - 30:3600 + 181])


def test_plot_run_writes_four_pngs(tmp_path):
    paths = plot_run(_dataset(), tmp_path)
    assert [p.name for p in paths] == ["power.png", "frequency.png", "bess.png", "thermal.png"]
    for p in paths:
        head = p.read_bytes()[:8]
        assert head == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000
