"""Server-sent events: the live twin's states pushed to every subscriber, and a run's progress as it happens.

:class:`Broadcaster` keeps the latest states (a ring of ``RING`` frames, each encoded once) on the event
loop. The live twin's thread hands each new state over with :meth:`Broadcaster.publish_threadsafe`;
every subscriber is woken once per state and sends the frames it has not sent yet, so a subscriber
that is briefly slow catches up from the ring and never skips a state (a client that reconnects with
``Last-Event-ID`` resumes after the last state it saw, if that is still in the ring). Frames carry
the state's sequence number as their ``id``; gaps in the ids tell a client it lost states.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from collections import deque
from typing import AsyncIterator, Callable

__all__ = ["Broadcaster", "sse_frame", "run_events", "KEEPALIVE_S", "event_schema"]

#: States kept for subscribers that fall behind or reconnect.
RING = 256
#: A comment line is sent when nothing else was for this long, so proxies keep the stream open [s].
KEEPALIVE_S = 15.0


def event_schema(events: list[str], data_description: str) -> dict:
    """OpenAPI content of an event stream (each event: ``event``, ``id``, ``data`` a JSON document as text)."""
    schema = {"type": "object", "required": ["event", "data"],
              "properties": {"event": {"type": "string", "enum": events}, "id": {"type": "string"},
                             "data": {"type": "string", "contentMediaType": "application/json", "description": data_description},
                             "retry": {"type": "integer"}}}
    return {"text/event-stream": {"schema": schema}}


def sse_frame(event: str, data: bytes | str, id_: int | str | None = None) -> bytes:
    """One server-sent event (``data`` must be a single line, as compact JSON is)."""
    head = f"id: {id_}\n" if id_ is not None else ""
    body = data.decode() if isinstance(data, bytes) else data
    return f"{head}event: {event}\ndata: {body}\n\n".encode()


class Broadcaster:
    """Fan-out of the live twin's states to the subscribers of ``GET /live/stream`` (lives on one event loop)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_subscribers: int = 2000):
        self.loop = loop
        self.max_subscribers = max_subscribers
        self.subscribers = 0
        self.seq = 0
        self._ring: deque[tuple[int, bytes]] = deque(maxlen=RING)
        self._wake = asyncio.Event()
        self._closed = False

    # ------------------------------------------------------------------ producer (any thread)
    def publish_threadsafe(self, state_json: bytes) -> None:
        """Hand a new state over from another thread (the live twin's)."""
        if not self._closed:
            try:
                self.loop.call_soon_threadsafe(self._publish, state_json)
            except RuntimeError:  # the loop is closed: the app has stopped
                self._closed = True

    def _publish(self, state_json: bytes) -> None:
        self.seq += 1
        self._ring.append((self.seq, sse_frame("state", state_json, self.seq)))
        wake, self._wake = self._wake, asyncio.Event()
        wake.set()

    @property
    def closed(self) -> bool:
        return self._closed

    def end_on_signals(self) -> Callable[[], None]:
        """End every stream as soon as the server is told to stop (SIGINT, SIGTERM), before it waits for open
        connections; returns the function that puts the previous handlers back. (Main thread only: else a no-op.)"""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            prev = signal.getsignal(sig)
            if not callable(prev):
                continue

            def handler(signum, frame, prev=prev):
                self.close()
                prev(signum, frame)

            previous[sig] = prev
            signal.signal(sig, handler)

        def restore() -> None:
            for sig, prev in previous.items():
                signal.signal(sig, prev)

        return restore

    def close(self) -> None:
        """End every stream (server shutdown)."""
        self._closed = True
        try:
            self.loop.call_soon_threadsafe(self._wake.set)
        except RuntimeError:
            pass

    # ------------------------------------------------------------------ consumers (the loop)
    def full(self) -> bool:
        return self.subscribers >= self.max_subscribers

    async def stream(self, last_id: int | None = None, limit: int | None = None) -> AsyncIterator[bytes]:
        """The frames of one subscriber: the latest state at once (or those after ``last_id``), then each new one;
        ``limit`` states in all if given."""
        self.subscribers += 1
        sent = 0
        try:
            if last_id is not None and self._ring and self._ring[0][0] <= last_id + 1:
                nxt = last_id + 1
            else:
                nxt = self._ring[-1][0] if self._ring else self.seq + 1
            yield b"retry: 2000\n\n"
            while not self._closed:
                if self._ring and self._ring[-1][0] >= nxt:
                    first = self._ring[0][0]
                    start = max(nxt - first, 0)
                    frames = [f for _, f in list(self._ring)[start:]]
                    if limit is not None:
                        frames = frames[:limit - sent]
                    sent += len(frames)
                    nxt = self._ring[-1][0] + 1
                    yield b"".join(frames)
                    if limit is not None and sent >= limit:
                        return
                    continue
                wake = self._wake
                try:
                    await asyncio.wait_for(wake.wait(), KEEPALIVE_S)
                except TimeoutError:
                    yield b": keep-alive\n\n"
        finally:
            self.subscribers -= 1


async def run_events(get_record: Callable, run_id: str, poll_s: float, read,
                     stopping: Callable[[], bool] = lambda: False) -> AsyncIterator[bytes]:
    """The events of one run: ``progress`` whenever its status or progress changes, ``event`` for each entry
    of its sequence of events as the engine logs it (scenario events, relay trips, PMS actions: the rows
    of the run's ``events.csv``, which the runner appends segment by segment), and ``end`` once it is
    finished (then the stream ends; it also ends, without ``end``, when ``stopping()`` turns true: the
    server is stopping).

    ``get_record`` is called through ``read`` (a coroutine running it off the event loop).
    """
    last = None
    seq = 0
    sent_events = 0
    last_sent = time.monotonic()
    yield b"retry: 2000\n\n"
    while not stopping():
        rec = await read(get_record, run_id)
        if rec is None:
            seq += 1
            yield sse_frame("end", json.dumps({"id": run_id, "status": "deleted"}), seq)
            return
        doc = {"id": rec.id, "status": rec.status, "progress_pct": round(100.0 * (rec.progress or 0.0), 3),
               "eta_s": rec.eta_s, "error": rec.error}
        events = await read(_logged_events, rec.store)
        while sent_events < len(events):
            seq += 1
            yield sse_frame("event", json.dumps(events[sent_events]), seq)
            sent_events += 1
        if doc != last:
            seq += 1
            yield sse_frame("progress", json.dumps(doc), seq)
            last, last_sent = doc, time.monotonic()
        if rec.status not in ("queued", "running"):
            seq += 1
            yield sse_frame("end", json.dumps(doc), seq)
            return
        if time.monotonic() - last_sent > KEEPALIVE_S:
            yield b": keep-alive\n\n"
            last_sent = time.monotonic()
        await asyncio.sleep(poll_s)


def _logged_events(store: str | None) -> list[dict]:
    """The complete rows of a run's ``events.csv`` so far (a line still being written is left for later)."""
    import csv
    import io
    from pathlib import Path

    from twin.report import EVENTS_FILE

    if not store:
        return []
    try:
        text = (Path(store) / EVENTS_FILE).read_text()
    except OSError:
        return []
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    rows = list(csv.DictReader(io.StringIO(text)))
    out = []
    for r in rows:
        try:
            value = float(r["value"]) if r.get("value") not in ("", None) else None
            out.append({**r, "t_s": float(r["t_s"]), "value": value})
        except (KeyError, TypeError, ValueError):
            continue
    return out
