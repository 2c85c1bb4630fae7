"""The lab's loop plugin counts only its own probe coming back (issue 15.5): a stub zone
forwarded to an address nobody answers on fails that zone's lookups alone; the DNS pods keep
running and every other zone, the cluster's own included, keeps resolving; the stub audit
names the address."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from netconform import dnsglue
from netconform.waits import wait_until
from provisioning.lab import control, layouts
from provisioning.lab.control import LabPaths
from provisioning.lab.dns.server import LOOP_SEEN_LIMIT, PROBE_RETRY, PROBE_TIMEOUT
from tests.labrun import run_suite
from tests.tools import kubectl_binary

AUDIT = "suites/dns/test_dns_lb.py::test_dns_stub_audit"
#: an unused host of west's node subnet (router .1, nodes .10 and .11): inside the lab,
#: and nobody answers there (no ARP reply: the forward times out)
UNANSWERED = "10.102.0.250"
ZONE = "west.svc.cluster.local"
#: long enough for more probes than the loop plugin may see, each timing out, then retried
PROBES_SEEN = (LOOP_SEEN_LIMIT + 2) * (PROBE_TIMEOUT + PROBE_RETRY) + 20


def kubectl(lab: LabPaths, *args: str) -> str:
    argv = [kubectl_binary(), "--kubeconfig", str(lab.kubeconfig), "--context", "lab-east"]
    done = subprocess.run([*argv, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def unanswered_stub(lab: LabPaths) -> Iterator[LabPaths]:
    """East's stub for west's zone forwards to UNANSWERED (a `kubectl patch`, as a user
    would); the Corefile is put back afterwards."""
    cm = ["configmap", "coredns", "-n", "kube-system"]
    corefile = json.loads(kubectl(lab, "get", *cm, "-o", "json"))["data"]["Corefile"]
    blocks = dnsglue.split_blocks(corefile)
    assert any(key == ZONE for key, _ in blocks), corefile
    broken = "\n".join(
        re.sub(r"forward \. [^\n]+", f"forward . {UNANSWERED}", text) if key == ZONE else text
        for key, text in blocks
    )
    kubectl(lab, "patch", *cm, "-p", json.dumps({"data": {"Corefile": broken + "\n"}}))
    yield lab
    kubectl(lab, "patch", *cm, "-p", json.dumps({"data": {"Corefile": corefile}}))


def dns_pods(lab: LabPaths) -> list[dict[str, object]]:
    out = kubectl(lab, "get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns", "-o", "json")
    pods: list[dict[str, object]] = json.loads(out)["items"]
    assert pods, "east has no DNS pods"
    return pods


def probe_timeouts(lab: LabPaths) -> dict[str, int]:
    """pod -> how many of its loop probes for ZONE timed out at UNANSWERED (its log says)."""
    counts = {}
    for pod in dns_pods(lab):
        name = str(pod["metadata"]["name"])  # type: ignore[index]
        log = kubectl(lab, "logs", "-n", "kube-system", name)
        fatal = [line for line in log.splitlines() if "[FATAL] plugin/loop" in line]
        if fatal:
            pytest.fail(f"{name} halted on an unanswered forward: {fatal[0]}", pytrace=False)
        counts[name] = len(re.findall(rf"\d+\.\d+\.{ZONE}\. HINFO: read udp .*->{UNANSWERED}", log))
    return counts


def lookup(lab: LabPaths, name: str) -> str:
    """dig's status (NOERROR, NXDOMAIN, SERVFAIL...) or `timeout`, asked of east's kube-dns
    from east's first node."""
    state = control.read_state(lab)
    assert state is not None
    node = layouts.plan(state["prefix"], 3).region("east").nodes[0].netns
    argv = ["ip", "netns", "exec", node, "dig", "@10.201.0.10", "+time=5", "+tries=1", name]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout
    found = re.search(r"status: (\w+)", out)
    return found.group(1) if found else "timeout"


def test_unanswered_stub_fails_only_its_zone(unanswered_stub: LabPaths, tmp_path: Path) -> None:
    lab = unanswered_stub
    seen = wait_until(
        lambda: (c := probe_timeouts(lab)) and min(c.values()) > LOOP_SEEN_LIMIT and c,
        timeout=PROBES_SEEN,
        name="loop_probes_timed_out",
        describe=lambda: str(probe_timeouts(lab)),
    )
    for pod in dns_pods(lab):
        name = pod["metadata"]["name"]  # type: ignore[index]
        statuses = pod["status"]["containerStatuses"]  # type: ignore[index]
        assert all(s["ready"] for s in statuses), f"{name} not ready after {seen}: {statuses}"
        log = kubectl(lab, "logs", "-n", "kube-system", str(name))
        assert "[FATAL] plugin/loop" not in log, log
    assert lookup(lab, f"kube-dns.kube-system.{ZONE}") in ("SERVFAIL", "timeout")
    assert lookup(lab, "kube-dns.kube-system.svc.cluster.local") == "NOERROR"  # its own zone
    assert lookup(lab, "kube-dns-lb.kube-system.central.svc.cluster.local") in (
        "NOERROR",
        "NXDOMAIN",
    )  # another stub zone: central's DNS answers it
    run = run_suite([AUDIT, "--topology", str(lab.topology)], tmp_path)
    assert run.failed() == {f"east:{ZONE}"}, run.output[-3000:]
    message = run.messages[f"east:{ZONE}"]
    assert f"east: stub {ZONE} forwards to {UNANSWERED}; expected west's" in message, message
