"""The pure parts of the suites, one module per suite family: the expectations (outcome
types, route tables, oracles), how cases are sliced, and the likely causes read from the
cases. Pure functions of their arguments (no cluster, no module state), so each is unit
tested with the data that contradicts it (`tests/unit/test_*_hints.py`); the suites in
`suites/` keep the setup (manifests, deployment) and the tests."""
