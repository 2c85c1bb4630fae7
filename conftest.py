"""Loads the netconform plugin; everything else lives in fixtures/.

The plugin's imports (the kubernetes client's models above all) make a few hundred thousand
objects; the cyclic garbage collector ran over the growing heap again and again while they
were made (0.4-0.6 s of a run's start, measured). It is off while the plugins load, and
`pytest_configure` freezes what they made (moved out of every later collection's view) and
turns it back on.
"""

import gc

import pytest

gc.disable()

pytest_plugins = [
    "fixtures.plugin",
    "fixtures.collection",
    "fixtures.diagnose",
    "fixtures.outcomes",
    "fixtures.summary",
    "fixtures.workloads",
    "fixtures.checks",
    "fixtures.cloud",
]


@pytest.hookimpl(tryfirst=True)
def pytest_configure() -> None:
    gc.freeze()
    gc.enable()
