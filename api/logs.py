"""Structured logs: every line has a UTC timestamp, a level, the logger, and the id of the request it serves.

Two formats (``TWIN_LOG_FORMAT``): ``text`` (one line, ``key=value`` extras) and ``json`` (one object
per line). The request id comes from the ``X-Request-ID`` header when it is a plain token (≤ 64 of
``A-Z a-z 0-9 . _ -``), else it is generated; it is returned in ``X-Request-ID`` and set on every log
record written while the request is served. The access log (logger ``twin.api.access``) writes one
line per request: method, path (never the query string or headers: no secrets), status, duration,
bytes and client address.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid
from datetime import datetime, timezone

__all__ = ["request_id", "configure_logging", "log_config", "RequestLog", "Formatter"]

#: The id of the request being served (``-`` outside a request).
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_ID_OK = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")
_STD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "request_id"}

access_log = logging.getLogger("twin.api.access")


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return True


class Formatter(logging.Formatter):
    """``text``: ``2026-07-15T14:00:00.123Z INFO twin.api [req=…] message k=v``; ``json``: one object per line."""

    def __init__(self, fmt: str = "text"):
        super().__init__()
        self.kind = fmt

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(record.msecs):03d}Z"
        msg = record.getMessage()
        extra = {k: v for k, v in record.__dict__.items() if k not in _STD and not k.startswith("_")}
        rid = getattr(record, "request_id", "-")
        if record.exc_info:
            extra["exception"] = self.formatException(record.exc_info)
        if self.kind == "json":
            doc = {"time": ts, "level": record.levelname, "logger": record.name, "request_id": rid, "message": msg, **extra}
            return json.dumps(doc, default=str, ensure_ascii=False)
        tail = "".join(f" {k}={v}" for k, v in extra.items() if k != "exception")
        line = f"{ts} {record.levelname:<7} {record.name} [req={rid}] {msg}{tail}"
        if "exception" in extra:
            line += "\n" + extra["exception"]
        return line


def log_config(fmt: str = "text", level: str = "INFO") -> dict:
    """A :func:`logging.config.dictConfig` for the service's and uvicorn's loggers (uvicorn's ``log_config``)."""
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": _RequestIdFilter}},
        "formatters": {"twin": {"()": Formatter, "fmt": fmt}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "twin",
                                "filters": ["request_id"]}},
        "loggers": {
            "twin": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},  # ours replaces it
        },
    }


def configure_logging(fmt: str = "text", level: str = "INFO") -> None:
    """Give the ``twin`` loggers the structured handler unless logging is configured already (by ``twin serve``'s
    log config, or by a host application such as a test runner: then the records propagate to its handlers)."""
    import logging.config

    twin = logging.getLogger("twin")
    if logging.getLogger().handlers or any(isinstance(h.formatter, Formatter) for h in twin.handlers):
        return
    cfg = log_config(fmt, level)
    cfg["loggers"] = {"twin": cfg["loggers"]["twin"]}
    logging.config.dictConfig(cfg)


class RequestLog:
    """Pure ASGI middleware: a request id for every HTTP request (header and log records), and the access log."""

    def __init__(self, app, enabled=lambda: True):
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        rid = None
        for k, v in scope.get("headers", ()):
            if k == b"x-request-id" and _ID_OK.match(v):
                rid = v.decode()
                break
        rid = rid or uuid.uuid4().hex[:16]
        token = request_id.set(rid)
        header = (b"x-request-id", rid.encode())
        status, size = 500, 0
        tic = time.perf_counter()

        async def send_wrapper(message):
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if self.enabled():
                client = scope.get("client") or ("-", 0)
                access_log.info("%s %s %d", scope["method"], scope["path"], status,
                                extra={"status": status, "duration_ms": round(1e3 * (time.perf_counter() - tic), 2),
                                       "bytes": size, "client": f"{client[0]}:{client[1]}"})
            request_id.reset(token)

