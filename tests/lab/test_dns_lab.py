"""The dns suites against the real lab: healthy, then a stub missing makes exactly its pair
fail; the glue (`netconform-kube`) by hand: plan, apply, a second apply with no changes, and
its bad input as one line with its own exit code, naming cluster and ConfigMap or Service."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netconform import dnsglue
from netconform.errors import DnsConfigError, WaitTimeoutError
from netconform.topology import load_topology
from provisioning.lab import control
from provisioning.lab.control import LabPaths
from tests.labrun import run_suite

SUITE = "suites/dns"


def kubectl(lab: LabPaths, cluster: str, *args: str, stdin: str | None = None) -> str:
    argv = ["kubectl", "--kubeconfig", str(lab.kubeconfig), "--context", f"lab-{cluster}"]
    done = subprocess.run(
        [*argv, *args], input=stdin, capture_output=True, text=True, check=True, timeout=30
    )
    return done.stdout


def glue(lab: LabPaths, *args: str) -> tuple[int, str]:
    """`netconform-kube ARGS --topology T` as a user runs it: exit code and output."""
    done = subprocess.run(
        [sys.executable, "-m", "provisioning.kube", *args, "--topology", str(lab.topology)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    return done.returncode, done.stdout + done.stderr


def configmap(lab: LabPaths, cluster: str, name: str) -> dict[str, Any]:
    text = kubectl(lab, cluster, "get", "configmap", name, "-n", "kube-system", "-o", "json")
    cm: dict[str, Any] = json.loads(text)
    return cm


def put_data(lab: LabPaths, cluster: str, name: str, data: dict[str, str]) -> None:
    patch = json.dumps({"data": data})
    kubectl(lab, cluster, "patch", "configmap", name, "-n", "kube-system", "-p", patch)


def system_configmap(name: str, data: dict[str, str]) -> dict[str, Any]:
    meta = {"name": name, "namespace": "kube-system"}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


@pytest.fixture
def east_corefile(lab: LabPaths) -> Iterator[str]:
    """east's Corefile, put back as it was after the test."""
    text = str(configmap(lab, "east", "coredns")["data"]["Corefile"])
    yield text
    put_data(lab, "east", "coredns", {"Corefile": text})


def test_dns_faults_fail_only_their_pairs(lab: LabPaths, tmp_path: Path) -> None:
    out = io.StringIO()
    dnsglue.run(load_topology(lab.topology), True, "lb", out, dnsglue.LB_READY)
    assert "no changes" in out.getvalue(), out.getvalue()  # up seeded the stubs already
    healthy = run_suite([SUITE, "--topology", str(lab.topology)], tmp_path)
    assert healthy.rc == 0, healthy.output[-3000:]
    control.call(
        lab, "POST", "/fault", {"name": "stub-missing", "args": ["east", "west.svc.cluster.local"]}
    )
    try:
        broken = run_suite(
            [f"{SUITE}/test_dns_connect.py", "--topology", str(lab.topology)], tmp_path
        )
    finally:
        control.call(lab, "POST", "/heal")
    assert broken.failed() == {"east->west"}, broken.output[-3000:]
    message = broken.messages["east->west"]
    assert "echo-pods.west.svc.cluster.local" in message and "observed NXDOMAIN" in message
    assert "DNS of east fails for west.svc.cluster.local" in message


def test_glue_plan_apply_then_no_changes(lab: LabPaths, east_corefile: str) -> None:
    kept = [
        c for k, c in dnsglue.split_blocks(east_corefile) if not k.endswith(".svc.cluster.local")
    ]
    put_data(lab, "east", "coredns", {"Corefile": "\n".join(kept) + "\n"})  # east's stubs gone
    rc, plan = glue(lab, "plan")
    assert rc == 0 and "east: Corefile stubs central.svc.cluster.local -> 10.100.255." in plan, plan
    assert "central: Corefile" not in plan and "west: Corefile" not in plan, plan
    assert "west.svc.cluster.local" not in configmap(lab, "east", "coredns")["data"]["Corefile"]
    rc, applied = glue(lab, "apply")
    assert rc == 0 and "applied 1 change(s)" in applied, applied
    corefile = configmap(lab, "east", "coredns")["data"]["Corefile"]
    assert "west.svc.cluster.local:53 {" in corefile and "forward . 10.102.255." in corefile
    rc, again = glue(lab, "apply")
    assert rc == 0 and again.splitlines()[-2:] == ["no changes", "applied 0 change(s)"], again


def test_glue_corefile_that_does_not_parse(lab: LabPaths, east_corefile: str) -> None:
    put_data(lab, "east", "coredns", {"Corefile": east_corefile + "west.svc.cluster.local:53 {\n"})
    rc, out = glue(lab, "plan")
    errors = [ln for ln in out.splitlines() if "error" in ln]
    assert rc == DnsConfigError.exit_code, out
    assert len(errors) == 1 and "Traceback" not in out, out
    assert errors[0].startswith(
        "netconform-kube: error: east: ConfigMap kube-system/coredns Corefile"
    )


def test_glue_stub_domains_that_are_not_json(lab: LabPaths, east_corefile: str) -> None:
    # a kube-dns cluster: no coredns ConfigMap, the legacy kube-dns one with stubDomains
    kubectl(lab, "east", "delete", "configmap", "coredns", "-n", "kube-system")
    legacy = system_configmap("kube-dns", {"stubDomains": '{"west.svc.cluster.local": ['})
    kubectl(lab, "east", "apply", "-f", "-", stdin=json.dumps(legacy))
    try:
        rc, out = glue(lab, "plan")
    finally:
        kubectl(lab, "east", "delete", "configmap", "kube-dns", "-n", "kube-system")
        coredns = system_configmap("coredns", {"Corefile": east_corefile})
        kubectl(lab, "east", "apply", "-f", "-", stdin=json.dumps(coredns))
    errors = [ln for ln in out.splitlines() if "error" in ln]
    assert rc == DnsConfigError.exit_code and len(errors) == 1, out
    assert errors[0].startswith(
        "netconform-kube: error: east: ConfigMap kube-system/kube-dns stubDomains"
    ), out


def test_glue_lb_that_never_gets_an_address(lab: LabPaths) -> None:
    lb = dnsglue.lb_manifest()
    lb["spec"]["loadBalancerClass"] = "example.com/no-such-controller"  # no one serves it
    kubectl(lab, "east", "delete", "service", dnsglue.LB_NAME, "-n", "kube-system")
    kubectl(lab, "east", "apply", "-f", "-", stdin=json.dumps(lb))
    try:
        rc, out = glue(lab, "plan", "--lb-timeout", "1")
    finally:
        kubectl(lab, "east", "delete", "service", dnsglue.LB_NAME, "-n", "kube-system")
        healed_rc, healed = glue(lab, "apply")  # a new kube-dns-lb, peers' stubs follow it
    errors = [ln for ln in out.splitlines() if "error" in ln]
    assert rc == WaitTimeoutError.exit_code and len(errors) == 1, out
    assert errors[0] == (
        "netconform-kube: error: lb_ready: not reached within 1s: east: Service "
        "kube-system/kube-dns-lb has no EXTERNAL-IP (status.loadBalancer.ingress is empty)"
    ), out
    assert healed_rc == 0 and "east: create Service kube-system/kube-dns-lb" in healed, healed
