"""Polling waits with a name and a timeout (tenacity underneath), never a bare sleep."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tenacity import Retrying, retry_if_result, stop_after_delay, wait_exponential

from netconform.errors import WaitTimeoutError

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T | None],
    *,
    timeout: float,
    name: str,
    interval: float = 0.05,
    max_interval: float = 1.0,
    describe: Callable[[], str] | None = None,
) -> T:
    """Poll `condition` until it returns something truthy, and return that.

    Raises WaitTimeoutError naming the wait (`pod_ready`), its timeout and, via `describe`,
    the state it was stuck in. Exceptions from `condition` propagate at once.
    """
    retrying = Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_exponential(multiplier=interval, min=interval, max=max_interval),
        retry=retry_if_result(lambda result: not result),
        retry_error_callback=lambda state: None,
        reraise=True,
    )
    result: T | None = retrying(condition)
    if not result:
        detail = f": {describe()}" if describe is not None else ""
        raise WaitTimeoutError(f"{name}: not reached within {timeout:g}s{detail}")
    return result
