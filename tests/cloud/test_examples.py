"""The example topologies load, do not overlap, and yield the ids the docs promise."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.cloud import cloud_cases
from netconform.topology import load_topology
from provisioning.cloud import check_overlaps

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("name", ["mrc-clouds", "mrc-gcp", "mrc-azure"])
def test_example_topology(name: str) -> None:
    topology = load_topology(EXAMPLES / f"{name}.yaml")
    check_overlaps(topology)
    cloud = topology.clusters[0].cloud
    ids = [c.id for c in cloud_cases(topology, "port")]
    assert f"{cloud}:central->east:9092" in ids and len(ids) == 6 * 5
