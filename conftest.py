"""Loads the netconform plugin; everything else lives in fixtures/."""

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
