"""The dns suites against the real lab: healthy, then each DNS fault makes exactly the affected
region pairs fail, naming the zone and cluster; the glue's second apply changes nothing."""

from __future__ import annotations

import io
from pathlib import Path

from netconform.topology import load_topology
from provisioning import kube
from provisioning.lab import control
from provisioning.lab.control import LabPaths
from tests.labrun import run_suite

SUITE = "suites/dns"


def test_dns_faults_fail_only_their_pairs(lab: LabPaths, tmp_path: Path) -> None:
    out = io.StringIO()
    kube.run(load_topology(lab.topology), True, "pods", out, kube.LB_READY)
    assert "no changes" in out.getvalue(), out.getvalue()  # up seeded the stubs already
    healthy = run_suite([SUITE, "--topology", str(lab.topology)], tmp_path)
    assert healthy.rc == 0, healthy.output[-3000:]
    control.call(
        lab, "POST", "/fault", {"name": "stub-missing", "args": ["east", "west.svc.cluster.local"]}
    )
    try:
        broken = run_suite([SUITE, "--topology", str(lab.topology)], tmp_path)
    finally:
        control.call(lab, "POST", "/heal")
    assert broken.failed() == {"east->west"}, broken.output[-3000:]
    message = broken.messages["east->west"]
    assert "echo-pods.west.svc.cluster.local" in message and "observed NXDOMAIN" in message
    assert "DNS of east fails for west.svc.cluster.local" in message
