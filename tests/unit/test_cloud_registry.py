"""The cloud interface imports no provider; providers are found by name and load lazily."""

from __future__ import annotations

import subprocess
import sys

import pytest

from netconform.errors import TopologyError
from netconform.topology import Topology
from provisioning.cloud import CLOUD_NAMES
from provisioning.providers import PROVIDERS, provider_for, register


def test_interface_and_registry_import_no_provider_and_no_sdk() -> None:
    code = (
        "import sys, provisioning.cloud, provisioning.providers, provisioning.cli\n"
        "heavy = [m for m in ('provisioning.aws', 'provisioning.gcp', 'provisioning.azure',\n"
        "         'boto3', 'google.cloud.compute_v1', 'azure.mgmt.network') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr


@pytest.mark.parametrize("cloud", CLOUD_NAMES)
def test_every_cloud_has_a_provider_class(cloud: str) -> None:
    module, _, attr = PROVIDERS[cloud].partition(":")
    provider_class = getattr(__import__(module, fromlist=[attr]), attr)
    assert getattr(provider_class, "cloud", None) == cloud


def test_unknown_cloud_is_a_topology_error() -> None:
    with pytest.raises(TopologyError, match="unknown cloud 'ibm'"):
        provider_for("ibm", Topology(name="t", clusters=()))


def test_register_checks_the_import_path() -> None:
    with pytest.raises(ValueError, match="module:attribute"):
        register("other", "no-colon")
