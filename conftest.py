"""Loads the netconform plugin; everything else lives in fixtures/."""

pytest_plugins = [
    "fixtures.plugin",
    "fixtures.outcomes",
    "fixtures.diagnose",
    "fixtures.summary",
    "fixtures.workloads",
    "fixtures.checks",
    "fixtures.cloud",
]
