"""What the lab's API server refuses to take, as kube-apiserver refuses it: bodies over its size
limit (413) and short requests beyond its in-flight limits (429); watch, exec, attach, log and
port-forward are long-running and not counted.

Upstream: the body limit is `MaxRequestBodyBytes` (3 MiB) of k8s.io/apiserver/pkg/server/
config.go, enforced in endpoints/handlers/rest.go `limitedReadBody` with
`NewRequestEntityTooLargeError("limit is 3145728")`; the in-flight limits are the
`--max-requests-inflight` (400) and `--max-mutating-requests-inflight` (200) defaults of
server/options/server_run_options.go, applied by server/filters/maxinflight.go
`WithMaxInFlightLimit`, whose long-running check is `BasicLongRunningRequestCheck` (verbs watch
and proxy; subresources attach, exec, proxy, log, portforward). Upstream's filter writes a plain
text 429; the lab answers a `Status` (reason TooManyRequests, `retryAfterSeconds` 1, as
`NewTooManyRequests` makes) with the same `Retry-After: 1`, which every client reads the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from provisioning.lab.apiserver.errors import ApiError

MAX_BODY_BYTES: Final = 3 * 1024 * 1024
MAX_REQUESTS_INFLIGHT: Final = 400
MAX_MUTATING_INFLIGHT: Final = 200
_MUTATING: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_LONG_RUNNING_SUBRESOURCES: Final = frozenset({"attach", "exec", "proxy", "log", "portforward"})


def too_large() -> ApiError:
    """413 RequestEntityTooLarge, as `limitedReadBody` answers."""
    return ApiError(
        413, "RequestEntityTooLarge", f"Request entity too large: limit is {MAX_BODY_BYTES}"
    )


def check_length(request: web.Request) -> None:
    """Refuse a declared body over the limit before reading any of it."""
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise too_large()


def long_running(request: web.Request) -> bool:
    if request.query.get("watch", "") in ("true", "1"):
        return True
    last = request.path.rstrip("/").rsplit("/", 1)[-1]
    return last in _LONG_RUNNING_SUBRESOURCES or "/proxy/" in request.path


@dataclass
class InFlight:
    """Short requests being served now, mutating and not, against their limits."""

    limit: int = MAX_REQUESTS_INFLIGHT
    mutating_limit: int = MAX_MUTATING_INFLIGHT
    reads: int = 0
    writes: int = 0
    refused: int = 0
    """429s answered so far."""

    @contextmanager
    def admit(self, request: web.Request) -> Iterator[None]:
        """Count the request while it is served; ApiError 429 when its pool is full."""
        if long_running(request):
            yield
            return
        mutating = request.method in _MUTATING
        if (self.writes >= self.mutating_limit) if mutating else (self.reads >= self.limit):
            self.refused += 1
            raise ApiError(
                429,
                "TooManyRequests",
                "Too many requests, please try again later.",
                {"retryAfterSeconds": 1},
            )
        if mutating:
            self.writes += 1
        else:
            self.reads += 1
        try:
            yield
        finally:
            if mutating:
                self.writes -= 1
            else:
                self.reads -= 1
