"""The network_policy suite against the real lab: green when healthy; with enforcement off in
east, the stars steps that expect drops fail on exactly east as SECURITY findings; with one
east pod's new TCP connections dropped by hand, an OUTAGE names that pod; a policy naming UDP
is probed over UDP; the policy-extra-deny fault comes and goes through the API."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from netconform.cluster import ClusterClient
from netconform.errors import LabError
from netconform.topology import load_topology
from provisioning.lab import control
from provisioning.lab.control import LabPaths
from tests.labrun import SuiteRun, run_suite

SUITE = "suites/network_policy"
RUN_ID = "selftest-network-policy"
KEEP = ["--run-id", RUN_ID, "--keep-workloads"]
REGIONS = ("central", "east", "west")
STEPS = ("step-1-no-policy", "step-2-default-deny", "step-3-allow-ui", "step-4-backend",
         "step-5-frontend")  # fmt: skip


def east_client(lab: LabPaths) -> ClusterClient:
    topology = load_topology(lab.topology)
    return ClusterClient(topology.cluster("east"), topology.kubeconfig, topology.timeouts)


@pytest.fixture(scope="module")
def kept(lab: LabPaths) -> Iterator[LabPaths]:
    yield lab
    topology = load_topology(lab.topology)
    for cluster in topology.clusters:
        client = ClusterClient(cluster, topology.kubeconfig, topology.timeouts)
        client.delete_labelled(cluster.namespace, f"netconform.io/run-id={RUN_ID}")
        client.delete_suite_namespaces(f"netconform.io/run-id={RUN_ID}")


def suite(lab: LabPaths, tmp_path: Path, path: str = SUITE) -> SuiteRun:
    return run_suite([path, "--topology", str(lab.topology), *KEEP], tmp_path)


def test_healthy_lab_is_green(kept: LabPaths, tmp_path: Path) -> None:
    run = suite(kept, tmp_path)
    assert run.rc == 0, run.output[-3000:]
    expected = {f"{r}/{s}" for r in REGIONS for s in STEPS} | set(REGIONS)
    assert set(run.outcomes) == expected
    assert set(run.outcomes.values()) == {"passed"}


def test_policy_off_is_a_security_finding_in_east_only(kept: LabPaths, tmp_path: Path) -> None:
    control.call(kept, "POST", "/fault", {"name": "policy-off", "args": ["east"]})
    try:
        run = suite(kept, tmp_path, f"{SUITE}/test_stars.py")
    finally:
        control.call(kept, "POST", "/heal", {})
    assert run.failed() == {f"east/{s}" for s in STEPS[1:]}, run.output[-3000:]
    deny = run.messages["east/step-2-default-deny"]
    assert "SECURITY: unexpected allow" in deny and "OUTAGE" not in deny.split("truth")[0]
    line = next(ln for ln in deny.splitlines() if "east/client/client" in ln and ":80 " in ln)
    assert "east/stars/frontend" in line and "tcp expected TIMEOUT observed ALLOW" in line
    assert "default-deny" in line, line  # the deciding policy
    last = run.messages["east/step-5-frontend"]
    assert "frontend-policy" in last or "backend-policy" in last, last


def test_dropped_pod_is_an_outage_naming_it(kept: LabPaths, tmp_path: Path) -> None:
    pods = east_client(kept).objects("Pod", "east")
    pod = next(p for p in pods if p.metadata.name == "probe-0-0")
    node = control.call(kept, "GET", f"/netns?name={pod.spec.node_name}")["netns"]
    rule = ["PREROUTING", "-d", f"{pod.status.pod_ip}/32", "-p", "tcp", "--syn", "-j", "DROP"]
    subprocess.run(["ip", "netns", "exec", node, "iptables", "-t", "raw", "-I", *rule], check=True)
    try:
        run = suite(kept, tmp_path)
    finally:
        subprocess.run(["ip", "netns", "exec", node, "iptables", "-t", "raw", "-D", *rule],
                       check=True)  # fmt: skip
    assert run.failed() == {"east"}, run.output[-3000:]
    message = run.messages["east"]
    findings = [ln for ln in message.splitlines() if "unexpected" in ln]
    assert findings and all(ln.strip().startswith("OUTAGE: unexpected drop") for ln in findings)
    assert all("-> east/probe-0-0 (" in ln and "tcp expected ALLOW observed TIMEOUT" in ln
               for ln in findings), message  # fmt: skip


def test_udp_policy_is_probed_over_udp(kept: LabPaths, tmp_path: Path) -> None:
    """Ingress to east's probe pods admits UDP only: TCP into east is expected dropped."""
    client = east_client(kept)
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "udp-only", "namespace": "east",
                     "labels": {"netconform.io/run-id": RUN_ID}},
        "spec": {"podSelector": {"matchLabels": {"netconform.io/role": "probe"}},
                 "ingress": [{"ports": [{"protocol": "UDP", "port": 8080}]}]},
    }  # fmt: skip
    client.apply(policy)
    try:
        run = suite(kept, tmp_path, f"{SUITE}/test_policies.py")
        control.call(kept, "POST", "/fault", {"name": "policy-off", "args": ["east"]})
        try:
            off = suite(kept, tmp_path, f"{SUITE}/test_policies.py")
        finally:
            control.call(kept, "POST", "/heal", {})
    finally:
        client.delete("NetworkPolicy", "udp-only", "east")
    assert set(run.outcomes.values()) == {"passed"}, run.output[-3000:]
    assert off.failed() == {"east"}, off.output[-3000:]
    findings = [ln for ln in off.messages["east"].splitlines() if "unexpected" in ln]
    assert findings and all("SECURITY: unexpected allow" in ln and ":8080 tcp" in ln
                            and "udp-only" in ln for ln in findings), findings  # fmt: skip


def test_policy_extra_deny_fault_comes_and_goes(kept: LabPaths) -> None:
    client = east_client(kept)
    fault = {"name": "policy-extra-deny", "args": ["east/east"]}
    control.call(kept, "POST", "/fault", fault)
    try:
        names = [p.metadata.name for p in client.objects("NetworkPolicy", "east")]
        assert "netconform-fault-deny-all" in names
    finally:
        control.call(kept, "POST", "/heal", {})
    assert not client.objects("NetworkPolicy", "east")
    with pytest.raises(LabError, match="no namespace 'nope' in east"):
        control.call(kept, "POST", "/fault", {"name": "policy-extra-deny", "args": ["east/nope"]})


def test_policy_extra_deny_fails_pod_to_pod_naming_the_policy(
    kept: LabPaths, tmp_path: Path
) -> None:
    """A deny-all nobody expected in east: pod-to-pod fails on exactly the pairs that touch
    east, and the likely cause names the live policy selecting the failing pods."""
    control.call(kept, "POST", "/fault", {"name": "policy-extra-deny", "args": ["east/east"]})
    try:
        run = suite(kept, tmp_path, "suites/pod_to_pod")
    finally:
        control.call(kept, "POST", "/heal", {})
    touching = {f"{a}->{b}" for a in REGIONS for b in REGIONS if "east" in (a, b)}
    assert run.failed() == touching, run.output[-3000:]
    assert set(run.outcomes) - touching and all(
        run.outcomes[k] == "passed" for k in set(run.outcomes) - touching
    )
    for key in touching:
        assert (
            "likely cause: NetworkPolicies select the failing pods: east/east/"
            in (run.messages[key])
        ), run.messages[key]
        assert "netconform-fault-deny-all[Ingress+Egress]" in run.messages[key]
