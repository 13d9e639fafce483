"""Prometheus metrics: the live twin's state and the service's own health, on a per-app registry.

Live metrics are read from the latest snapshot when scraped (``twin_live_*``); service metrics count
requests by route template and status, time them, and count runs by outcome (``twin_http_*``,
``twin_runs_*``).
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

__all__ = ["Metrics", "MetricsMiddleware"]


class _LiveCollector:
    """Exposes the live twin's latest snapshot (nothing while it has none)."""

    def __init__(self, services):
        self.services = services

    def describe(self):
        return []

    def collect(self):
        live = getattr(self.services, "live", None)
        up = GaugeMetricFamily("twin_live_up", "1 while the live twin steps in real time")
        up.add_metric([], 1.0 if live is not None and live.status == "running" else 0.0)
        yield up
        pool = getattr(self.services, "pool", None)
        if pool is not None:
            g = GaugeMetricFamily("twin_runs_in_pool", "runs held by the worker pool", labels=["state"])
            g.add_metric(["running"], pool.n_active)
            g.add_metric(["queued"], pool.n_queued)
            yield g
        snap = live.snapshot if live is not None else None
        if snap is None:
            return
        g = GaugeMetricFamily("twin_live_time_seconds", "simulated seconds since the live twin started")
        g.add_metric([], snap.time_s)
        yield g
        g = GaugeMetricFamily("twin_live_step_duration_seconds", "wall time of the latest live step")
        g.add_metric([], live.step_wall_s)
        yield g
        g = GaugeMetricFamily("twin_live_lag_steps", "steps the live loop was behind real time")
        g.add_metric([], snap.lag_steps)
        yield g
        if snap.t_amb_c is not None:
            g = GaugeMetricFamily("twin_live_ambient_celsius", "ambient dry-bulb temperature")
            g.add_metric([], snap.t_amb_c)
            yield g
        power = GaugeMetricFamily("twin_live_power_megawatts", "power by source and load per island", labels=["island", "source"])
        freq = GaugeMetricFamily("twin_live_frequency_hertz", "island frequency", labels=["island"])
        res = GaugeMetricFamily("twin_live_reserve_margin_ratio", "(available capacity - load) / load", labels=["island"])
        n1 = GaugeMetricFamily("twin_live_n1_margin_ratio", "reserve margin after losing the largest unit", labels=["island"])
        cap = GaugeMetricFamily("twin_live_capacity_megawatts", "available capacity (turbines, grid, batteries)", labels=["island"])
        for name, isl in snap.islands.items():
            for src, v in (("turbines", isl.p_turbine_mw), ("bess", isl.p_bess_mw), ("grid", isl.p_grid_mw),
                           ("load", isl.p_load_mw), ("unserved", isl.p_unserved_mw), ("losses", isl.p_loss_mw)):
                if v is not None:
                    power.add_metric([name, src], v)
            if isl.f_hz is not None:
                freq.add_metric([name], isl.f_hz)
            if isl.reserve_margin_frac is not None:
                res.add_metric([name], isl.reserve_margin_frac)
            if isl.n1_margin_frac is not None:
                n1.add_metric([name], isl.n1_margin_frac)
            cap.add_metric([name], isl.capacity_mw)
        yield from (power, freq, res, n1, cap)
        soc = GaugeMetricFamily("twin_live_bess_soc_ratio", "battery state of charge", labels=["bess"])
        pb = GaugeMetricFamily("twin_live_bess_power_megawatts", "battery power, positive discharging", labels=["bess"])
        for name, b in snap.bess.items():
            if b.soc is not None:
                soc.add_metric([name], b.soc)
            if b.p_mw is not None:
                pb.add_metric([name], b.p_mw)
        yield from (soc, pb)
        temps = GaugeMetricFamily("twin_live_temperature_celsius", "hall temperatures", labels=["hall", "node"])
        pit = GaugeMetricFamily("twin_live_hall_power_megawatts", "hall power", labels=["hall", "kind"])
        for name, h in snap.halls.items():
            if h.t_gpu_c is not None:
                temps.add_metric([name, "gpu"], h.t_gpu_c)
            if h.t_coolant_c is not None:
                temps.add_metric([name, "coolant"], h.t_coolant_c)
            if h.p_it_mw is not None:
                pit.add_metric([name, "it"], h.p_it_mw)
            if h.p_cooling_mw is not None:
                pit.add_metric([name, "cooling"], h.p_cooling_mw)
        yield from (temps, pit)
        online = GaugeMetricFamily("twin_live_turbines", "turbines by status", labels=["status"])
        counts: dict[str, int] = {}
        for t in snap.turbines.values():
            counts[t.status] = counts.get(t.status, 0) + 1
        for k, v in sorted(counts.items()):
            online.add_metric([k], v)
        yield online


class Metrics:
    """The app's registry and its service metrics."""

    def __init__(self, services):
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("twin_http_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("twin_http_request_duration_seconds", "HTTP request latency", ["route"], registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))
        self.runs_submitted = Counter("twin_runs_submitted", "runs accepted", ["kind"], registry=self.registry)
        self.runs_finished = Counter("twin_runs_finished", "runs ended, by status", ["status"], registry=self.registry)
        self.registry.register(_LiveCollector(services))


class MetricsMiddleware:
    """Pure ASGI middleware: count and time every HTTP request by its route template."""

    def __init__(self, app, get_metrics):
        self.app = app
        self.get_metrics = get_metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = 500
        tic = time.perf_counter()

        async def send_wrapper(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            metrics = self.get_metrics()
            if metrics is not None:
                route = self._route(scope)
                metrics.requests.labels(scope["method"], route, str(status)).inc()
                metrics.latency.labels(route).observe(time.perf_counter() - tic)

    @staticmethod
    def _route(scope) -> str:
        route = scope.get("route")
        return getattr(route, "path", "unmatched") if route is not None else "unmatched"
