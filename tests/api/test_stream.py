"""Server-sent events on a real server (uvicorn in a thread): every live state to every subscriber, a run's progress."""

from __future__ import annotations

import contextlib
import json
import time

import httpx
import pytest

from api.models import LiveState

from .conftest import READ, WRITE, make_settings
from .test_hardening import _serve_in_thread


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from api.main import create_app

    app = create_app(make_settings(tmp_path_factory.mktemp("stream-home"), live_period_s=0.2))
    server, thread, port = _serve_in_thread(app)
    url = f"http://127.0.0.1:{port}"
    t_end = time.monotonic() + 120
    while httpx.get(f"{url}/live/state", headers=READ).status_code != 200:
        assert time.monotonic() < t_end, "the live twin did not start"
        time.sleep(0.2)
    yield url
    server.should_exit = True
    thread.join(30)


def _events(resp: httpx.Response, n: int, timeout_s: float = 60.0) -> list[dict]:
    """The first ``n`` events of a stream: {'id', 'event', 'data'} (comments and retry lines skipped)."""
    out, cur = [], {}
    t_end = time.monotonic() + timeout_s
    for line in resp.iter_lines():
        assert time.monotonic() < t_end, f"only {len(out)} events in {timeout_s} s"
        if not line:
            if "event" in cur:
                out.append(cur)
                if len(out) == n:
                    return out
            cur = {}
            continue
        key, _, value = line.partition(": ")
        if key in ("id", "event", "data"):
            cur[key] = value
    return out


def test_every_subscriber_gets_every_state(base):
    with httpx.Client(base_url=base, headers=READ, timeout=30) as c, contextlib.ExitStack() as stack:
        streams = [stack.enter_context(c.stream("GET", "/live/stream")) for _ in range(3)]
        for s in streams:
            assert s.status_code == 200 and s.headers["content-type"].startswith("text/event-stream")
        got = [_events(s, 8) for s in streams]
    for events in got:
        ids = [int(e["id"]) for e in events]
        assert ids == list(range(ids[0], ids[0] + 8)), ids  # consecutive: no state skipped
        states = [LiveState.model_validate_json(e["data"]) for e in events]
        assert all(e["event"] == "state" for e in events)
        steps = [b.time_s - a.time_s for a, b in zip(states, states[1:])]
        assert all(d > 0 for d in steps), steps  # each a new state
    # subscribers that joined at the same time saw the same states
    common = set.intersection(*({e["id"] for e in events} for events in got))
    assert len(common) >= 5
    by_id = [{e["id"]: e["data"] for e in events} for events in got]
    assert all(by_id[0][i] == by_id[k][i] for i in common for k in (1, 2))


def test_resume_after_last_event_id(base):
    with httpx.Client(base_url=base, headers=READ, timeout=30) as c:
        with c.stream("GET", "/live/stream") as s:
            first = _events(s, 2)
        time.sleep(0.5)  # states go on while the client is away
        last = int(first[-1]["id"])
        with c.stream("GET", "/live/stream", headers={"Last-Event-ID": str(last)}) as s:
            resumed = _events(s, 3)
    assert [int(e["id"]) for e in resumed] == [last + 1, last + 2, last + 3]


def test_stream_needs_a_token(base):
    assert httpx.get(f"{base}/live/stream").status_code == 401


def test_run_progress_stream(base):
    with httpx.Client(base_url=base, timeout=60) as c:
        r = c.post("/runs", headers=WRITE, json={"scenario": {"name": "streamed", "horizon": 900},
                                                  "events": [{"at": 120, "do": "trip", "target": "southaven/titan350-01"}]})
        rid = r.json()["id"]
        with c.stream("GET", f"/runs/{rid}/stream", headers=READ) as s:
            assert s.status_code == 200
            events = _events(s, 10_000, timeout_s=120)  # the stream ends by itself with the run
    kinds = [e["event"] for e in events]
    assert kinds[0] == "progress" and kinds[-1] == "end" and kinds.count("end") == 1
    progress = [json.loads(e["data"])["progress_pct"] for e in events if e["event"] == "progress"]
    assert progress == sorted(progress) and progress[-1] == 100.0
    logged = [json.loads(e["data"]) for e in events if e["event"] == "event"]
    trip = [e for e in logged if e["source"] == "scenario"]
    assert [(e["t_s"], e["kind"], e["component"]) for e in trip] == [(120.0, "trip", "southaven/titan350-01")]
    assert [e["t_s"] for e in logged] == sorted(e["t_s"] for e in logged)  # the sequence of events, in order
    assert json.loads(events[-1]["data"])["status"] == "done"
    ids = [int(e["id"]) for e in events]
    assert ids == list(range(1, len(ids) + 1))
    assert httpx.get(f"{base}/runs/run-20990101-000000-abcdef/stream", headers=READ).status_code == 404
