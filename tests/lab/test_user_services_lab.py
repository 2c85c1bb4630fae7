"""The user's own Services are judged: a user's LoadBalancer Service in east (applied with
kubectl, as the user would) passes while its pods run; scaled to zero, it fails from every
source, named as a Service whose selector matches no ready pod, and the run's diagnosis says
so first; clusters without a Service of their own are `not supported`, saying why."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioning.lab.control import LabPaths
from tests.labrun import run_suite
from tests.tools import kubectl_binary

SUITE = "suites/services/test_user_services.py"
MANIFEST = Path(__file__).with_name("user-shop.yaml")


def kubectl(lab: LabPaths, *args: str) -> str:
    argv = [kubectl_binary(), "--kubeconfig", str(lab.kubeconfig), "--context", "lab-east",
            "-n", "east", *args]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60).stdout


@pytest.fixture
def shop(lab: LabPaths) -> Iterator[LabPaths]:
    kubectl(lab, "apply", "-f", str(MANIFEST))
    kubectl(lab, "rollout", "status", "deployment/shop", "--timeout=60s")
    yield lab
    kubectl(lab, "delete", "-f", str(MANIFEST), "--wait=true")


def test_a_users_service_is_judged_and_named_when_it_has_no_ready_pod(
    shop: LabPaths, tmp_path: Path
) -> None:
    args = [SUITE, "--topology", str(shop.topology), "-rs"]
    healthy = run_suite(args, tmp_path)
    assert healthy.rc == 0, healthy.output[-3000:]
    assert healthy.outcomes == {"east": "passed", "central": "skipped", "west": "skipped"}
    assert "not supported: west has no Service of its own in namespace west" in healthy.output
    kubectl(shop, "scale", "deployment/shop", "--replicas=0")
    broken = run_suite(args, tmp_path)
    assert broken.failed() == {"east"}, broken.output[-3000:]
    message = broken.messages["east"]
    assert "see diagnosis: Service east/east/shop has no ready endpoint: it " in message
    assert "Service east/east/shop has no ready endpoint: its selector app=shop matches" in message
    assert "-> east/east/shop:loadbalancer" in message and "observed REFUSED" in message
    assert "peering" not in message and "firewall" not in message
