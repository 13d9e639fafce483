"""grid_models.cache: built and compiled nets reused across processes without pandapower."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from twin.operating_point import nominal_net
from grid_models.cache import NetCache, NetConfig, NetTables
from grid_models.compile import compile_net
from sites import load_site


@pytest.fixture(scope="module")
def site():
    return load_site("colossus1")


@pytest.fixture(autouse=True)
def _disk_cache_only(monkeypatch):
    """These tests are about the cache on disk: a sweep run earlier in this process (tests/twin) may have left
    the in-process sharing on, which would hand a NetCache its net without reading the disk."""
    import grid_models.cache as gcache

    monkeypatch.setattr(gcache, "_PROCESS", None)


def _never():
    raise AssertionError("the net was built although the cache holds it")


def _config(t: NetTables, online: np.ndarray) -> NetConfig:
    return NetConfig(online, np.zeros(len(online), bool), np.zeros(len(online)), np.ones(len(t.ext_grid_name), bool),
                     t.line_in_service.copy(), t.trafo_in_service.copy())


def _config_without(t: NetTables, k: int) -> NetConfig:
    """The nominal configuration with unit ``k`` out of service."""
    online = t.gen_in_service.copy()
    online[k] = False
    return _config(t, online)


def test_a_second_cache_loads_tables_and_compilations_without_building(site, tmp_path):
    first = NetCache("colossus1-test", lambda: nominal_net(site), tmp_path)
    assert first.net_built and first.path.exists()
    t = first.tables
    online = t.gen_in_service.copy()
    arrays = first.compiled(_config(t, online))
    assert first.misses == 1
    online2 = online.copy()
    online2[0] = False  # a unit trips: another configuration
    arrays2 = first.compiled(_config(t, online2))
    assert first.misses == 2 and first.compiled(_config(t, online)) is arrays and first.hits == 1

    second = NetCache("colossus1-test", _never, tmp_path)
    assert not second.net_built
    np.testing.assert_array_equal(second.tables.load_p_mw, t.load_p_mw)
    assert list(second.tables.gen_name) == list(t.gen_name)
    for cfg, ref in ((_config(t, online), arrays), (_config(t, online2), arrays2)):
        got = second.compiled(cfg)
        np.testing.assert_array_equal(got.ybus_data, ref.ybus_data)
        np.testing.assert_array_equal(got.bus_p_row, ref.bus_p_row)
    assert second.hits == 2 and second.misses == 0 and not second.net_built

    # the cached compilation is what compile_net gives on a fresh net in that configuration
    net = nominal_net(site)
    _config(t, online2).apply(net)
    fresh = compile_net(net, distributed_slack=True)
    np.testing.assert_array_equal(second.compiled(_config(t, online2)).bus_vm_col, fresh.bus_vm_col)
    np.testing.assert_allclose(second.compiled(_config(t, online2)).ybus_data, fresh.ybus_data)


def test_other_inputs_other_entry_and_damaged_files_are_rebuilt(site, tmp_path):
    a = NetCache("one", lambda: nominal_net(site), tmp_path)
    b = NetCache("two", lambda: nominal_net(site), tmp_path)
    assert a.path != b.path
    a.path.write_bytes(b"not a pickle")
    c = NetCache("one", lambda: nominal_net(site), tmp_path)
    assert c.net_built and c.tables is not None  # rebuilt, and the file rewritten
    NetCache("one", _never, tmp_path)


def test_cache_off_keeps_nothing_on_disk(site, tmp_path, monkeypatch):
    monkeypatch.setenv("TWIN_CACHE_DIR", "off")
    c = NetCache("x", lambda: nominal_net(site))
    assert c.path is None and c.net_built
    assert not any(tmp_path.iterdir())


def test_a_warm_run_does_not_import_pandapower(tmp_path):
    code = """
import sys
from sites import load_site
from twin.engine import Engine
from twin.scenario import load_scenario
sc = load_scenario("southaven-largest-trip").model_copy(deep=True)
sc.scenario.horizon = 120.0
site = load_site("memphis")
from twin.scenario import resolve_events
sc.events[0].at = "00:01:00"
eng = Engine(site, sc, resolve_events(sc, site))
f = [seg["f_hz"].min() for seg in eng.segments()]
print("pandapower" in sys.modules, eng._net_cache.misses, min(f))
"""
    env = {**__import__("os").environ, "TWIN_CACHE_DIR": str(tmp_path)}
    cold = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout.split()
    warm = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout.split()
    assert cold[:2] == ["True", "2"]  # built, compiled before and after the trip
    assert warm[:2] == ["False", "0"]  # both compilations from the cache, pandapower never imported
    assert warm[2] == cold[2]  # and the same run


def test_the_number_of_kept_compilations_is_bounded(site, tmp_path, monkeypatch):
    import grid_models.cache as gc

    monkeypatch.setattr(gc, "MAX_COMPILED", 2)
    c = NetCache("bounded", lambda: nominal_net(site), tmp_path)
    t = c.tables
    configs = []
    for k in range(3):
        configs.append(_config_without(t, k))
        c.compiled(configs[-1])
    again = NetCache("bounded", _never, tmp_path)
    assert len(again._compiled) == 2 and configs[0].key() not in again._compiled


def test_caches_of_one_process_share_the_built_net_when_asked(site, tmp_path):
    from grid_models.cache import share_in_process

    builds = []

    def build():
        builds.append(1)
        return nominal_net(site)

    share_in_process(True)
    try:
        first = NetCache("shared", build, tmp_path)
        second = NetCache("shared", _never, tmp_path)  # same fingerprint: nothing built again
        assert second.net is first.net and second.tables is first.tables and len(builds) == 1
        NetCache("other", build, tmp_path)  # another fingerprint has its own entry
        assert len(builds) == 2
    finally:
        share_in_process(False)
    third = NetCache("shared", _never, tmp_path)  # off again: from the disk, the net not built
    assert not third.net_built


def test_a_new_configuration_writes_only_its_own_file(site, tmp_path):
    """Each compilation has a file of its own; the fingerprint's file grows by a digest, not by the arrays (a sweep
    meets hundreds of topologies: rewriting them all at each new one grew as their square)."""
    c = NetCache("files", lambda: nominal_net(site), tmp_path)
    t = c.tables
    sizes = []
    for k in range(3):
        c.compiled(_config_without(t, k))
        sizes.append(c.path.stat().st_size)
    files = sorted((c.path.parent / c.key).glob("*.pkl"))
    assert len(files) == 3 and min(f.stat().st_size for f in files) > 10 * (sizes[1] - sizes[0]) > 0
    assert 0 < sizes[1] - sizes[0] < 100 and 0 < sizes[2] - sizes[1] < 100
