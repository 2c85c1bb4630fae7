"""The dns checks against the real lab, broken on purpose: a forwarding loop (`stub-self`),
east's DNS down, a stub removed by hand with `kubectl patch`, udp/53 dropped by hand on one
node, east's kube-dns-lb down; and lookups typed in a pod through `kubectl exec`."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netconform import dnsglue
from provisioning.lab import control
from provisioning.lab.control import LabPaths
from tests.labrun import remove_run, run_suite

NAMES = "suites/dns/test_dns.py"
AUDIT = "suites/dns/test_dns_lb.py::test_dns_stub_audit"
RUN_ID = "selftest-dns"
KEEP = ["--run-id", RUN_ID, "--keep-workloads"]
ALL_PAIRS = {f"{a}->{b}" for a in ("central", "east", "west") for b in ("central", "east", "west")}
EAST_PAIRS = {p for p in ALL_PAIRS if "east" in p}


@pytest.fixture(scope="module")
def kept(lab: LabPaths) -> Iterator[LabPaths]:
    yield lab
    remove_run(lab, RUN_ID)


def kubectl(lab: LabPaths, cluster: str, *args: str) -> str:
    argv = ["kubectl", "--kubeconfig", str(lab.kubeconfig), "--context", f"lab-{cluster}", *args]
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout


def test_stub_self_loop_is_named_never_a_hang(kept: LabPaths, tmp_path: Path) -> None:
    control.call(kept, "POST", "/fault", {"name": "stub-self", "args": ["east"]})
    started = time.monotonic()
    try:
        broken = run_suite([NAMES, "--topology", str(kept.topology), *KEEP], tmp_path)
    finally:
        control.call(kept, "POST", "/heal")
    assert time.monotonic() - started < 120, "a forwarding loop must not hang the lookups"
    failed = broken.failed()
    assert {"east->west", "east->central"} <= failed <= EAST_PAIRS, broken.output[-3000:]
    message = broken.messages["east->west"]
    assert "kube-system/coredns-" in message and "CrashLoopBackOff" in message, message
    assert "[FATAL] plugin/loop: Loop (10.101." in message and "detected for zone" in message


def test_dns_down_fails_exactly_that_clusters_lookups(kept: LabPaths, tmp_path: Path) -> None:
    control.call(kept, "POST", "/fault", {"name": "dns-down", "args": ["east"]})
    try:
        broken = run_suite([NAMES, "--topology", str(kept.topology), *KEEP], tmp_path)
    finally:
        control.call(kept, "POST", "/heal")
    assert broken.failed() == EAST_PAIRS, broken.output[-3000:]
    assert all(broken.outcomes[p] == "passed" for p in ALL_PAIRS - EAST_PAIRS)
    asking = broken.messages["east->west"]  # east's pods ask east's DNS: no answer
    assert "-> west/echo-pods.west.svc.cluster.local dns expected ANSWER" in asking, asking
    assert "observed TIMEOUT (no answer (server 10.201.0.10)" in asking, asking
    asked = broken.messages["central->east"]  # central forwards east's zone: east is silent
    assert "-> east/echo-pods.east.svc.cluster.local dns" in asked, asked
    # central's DNS waits on its forward: the pod's dig gives up first, or gets SERVFAIL
    assert "(server 10.200.0.10)" in asked and "east.svc.cluster.local" in asked, asked
    assert "every failed lookup involves east's DNS" in asked, asked


def test_stub_removed_with_kubectl_patch(kept: LabPaths, tmp_path: Path) -> None:
    out = kubectl(kept, "east", "get", "configmap", "coredns", "-n", "kube-system", "-o", "json")
    corefile = json.loads(out)["data"]["Corefile"]
    blocks = dnsglue.split_blocks(corefile)
    without = "\n".join(c for k, c in blocks if k != "west.svc.cluster.local") + "\n"
    patch = json.dumps({"data": {"Corefile": without}})
    kubectl(kept, "east", "patch", "configmap", "coredns", "-n", "kube-system", "-p", patch)
    try:
        broken = run_suite([NAMES, AUDIT, "--topology", str(kept.topology), *KEEP], tmp_path)
    finally:
        patch = json.dumps({"data": {"Corefile": corefile}})
        kubectl(kept, "east", "patch", "configmap", "coredns", "-n", "kube-system", "-p", patch)
    assert broken.failed() == {"east->west", "east:west.svc.cluster.local"}, broken.output[-3000:]
    assert broken.outcomes["east:central.svc.cluster.local"] == "passed"
    audit = broken.messages["east:west.svc.cluster.local"]
    assert (
        "east:west.svc.cluster.local: east: no stub for west.svc.cluster.local in ConfigMap "
        "kube-system/coredns Corefile"
    ) in audit, audit
    lookup = broken.messages["east->west"]
    assert (
        "observed NXDOMAIN" in lookup and "DNS of east fails for west.svc.cluster.local" in lookup
    )


def test_udp53_dropped_on_one_node_fails_only_its_pods(kept: LabPaths, tmp_path: Path) -> None:
    pods = json.loads(kubectl(kept, "east", "get", "pods", "-n", "east", "-o", "json"))["items"]
    on_node = [p["status"]["podIP"] for p in pods if p["spec"]["nodeName"] == "east-node-0"]
    assert on_node, "suite workloads are kept by an earlier test of this module"
    pod_slice = str(ipaddress.ip_network(f"{on_node[0]}/24", strict=False))  # the node's pods
    node = control.call(kept, "GET", "/netns?name=east-node-0")["netns"]
    rule = ["PREROUTING", "-s", pod_slice, "-d", "10.201.0.10", "-p", "udp", "--dport", "53"]
    iptables = ["ip", "netns", "exec", node, "iptables", "-t", "raw"]
    subprocess.run([*iptables, "-I", *rule, "-j", "DROP"], check=True)
    try:
        broken = run_suite([NAMES, "--topology", str(kept.topology), *KEEP], tmp_path)
    finally:
        subprocess.run([*iptables, "-D", *rule, "-j", "DROP"], check=True)
    assert broken.failed() == {"east->central", "east->east", "east->west"}, broken.output[-3000:]
    for pair in broken.failed():
        lines = [ln.strip() for ln in broken.messages[pair].splitlines() if " expected " in ln]
        assert lines and all(ln.startswith("east/probe-0-") for ln in lines), lines
        assert all("observed TIMEOUT (no answer (server 10.201.0.10)" in ln for ln in lines)


def test_lookups_typed_in_a_pod(kept: LabPaths, tmp_path: Path) -> None:
    healthy = run_suite([NAMES, "--topology", str(kept.topology), *KEEP], tmp_path)
    assert healthy.rc == 0, healthy.output[-3000:]
    shell = ["exec", "-n", "east", "probe-0-0", "--"]
    services = kubectl(kept, "east", "get", "svc", "-n", "default", "-o", "name")
    if "service/kubernetes" in services.split():
        looked = kubectl(kept, "east", *shell, "nslookup", "kubernetes.default")
        assert "Name:\tkubernetes.default.svc.cluster.local" in looked, looked
    else:  # this lab has no `kubernetes` Service: the DNS Service's own name instead
        looked = kubectl(kept, "east", *shell, "nslookup", "kube-dns.kube-system")
        assert "Address: 10.201.0.10" in looked, looked
    west_echo = kubectl(kept, "west", "get", "svc", "echo", "-n", "west", "-o", "json")
    west_ip = json.loads(west_echo)["spec"]["clusterIP"]
    searched = kubectl(kept, "east", *shell, "dig", "+search", "+short", "echo.west")
    assert searched.split() == [west_ip], searched
    srv = kubectl(
        kept, "east", *shell, "dig", "+short", "SRV", "_http._tcp.echo.east.svc.cluster.local"
    )
    assert srv.strip().endswith(" echo.east.svc.cluster.local."), srv


def test_dns_lb_down_fails_only_that_lb(kept: LabPaths, tmp_path: Path) -> None:
    lb = "suites/dns/test_dns_lb.py::test_dns_load_balancer"
    fault = {"name": "lb-down", "args": ["east/kube-system/kube-dns-lb"]}
    control.call(kept, "POST", "/fault", fault)
    try:
        broken = run_suite([lb, "--topology", str(kept.topology), *KEEP], tmp_path)
    finally:
        control.call(kept, "POST", "/heal")
    assert broken.failed() == {"east"}, broken.output[-3000:]
    assert broken.outcomes["central"] == broken.outcomes["west"] == "passed"
    message = broken.messages["east"]
    lines = [ln.strip() for ln in message.splitlines() if " expected " in ln]
    asked = [ln for ln in lines if "echo.east.svc.cluster.local dns expected ANSWER" in ln]
    assert asked and all("observed TIMEOUT (no answer (server 10.101.255." in ln for ln in asked)
    assert all(ln.startswith(("central/probe-", "west/probe-")) for ln in lines), lines
    assert "the DNS LoadBalancer of east (kube-system/kube-dns-lb)" in message, message


def test_stub_to_own_dns_written_by_hand_is_a_loop_in_the_audit(
    kept: LabPaths, tmp_path: Path
) -> None:
    out = kubectl(kept, "east", "get", "configmap", "coredns", "-n", "kube-system", "-o", "json")
    corefile = json.loads(out)["data"]["Corefile"]
    west = next(c for k, c in dnsglue.split_blocks(corefile) if k == "west.svc.cluster.local")
    looped = corefile.replace(west, west.replace("forward . 10.102.", "forward . 10.201.0.10 #"))
    patch = json.dumps({"data": {"Corefile": looped}})
    kubectl(kept, "east", "patch", "configmap", "coredns", "-n", "kube-system", "-p", patch)
    try:
        broken = run_suite([AUDIT, "--topology", str(kept.topology), *KEEP], tmp_path)
    finally:
        patch = json.dumps({"data": {"Corefile": corefile}})
        kubectl(kept, "east", "patch", "configmap", "coredns", "-n", "kube-system", "-p", patch)
    assert broken.failed() == {"east:west.svc.cluster.local"}, broken.output[-3000:]
    message = broken.messages["east:west.svc.cluster.local"]
    assert (
        "east: stub west.svc.cluster.local forwards to east's own DNS 10.201.0.10 (a loop)"
        in message
    ), message


def test_both_xdist_workers_report_the_measuring_workers_cause(
    kept: LabPaths, tmp_path: Path
) -> None:
    """Two failing tests of one check, one per worker (xdist sends fewer tests than two per
    worker round-robin): one worker measures, the other reads the shared result, and both
    print the same cause, with what only the measuring worker saw (the crash-looping pods)."""
    ids = [f"{NAMES}::test_dns[east->west]", f"{NAMES}::test_dns[east->central]"]
    control.call(kept, "POST", "/fault", {"name": "stub-self", "args": ["east"]})
    try:
        broken = run_suite(
            [*ids, "-n", "2", "-v", "-v", "--topology", str(kept.topology), *KEEP], tmp_path
        )
    finally:
        control.call(kept, "POST", "/heal")
    assert broken.failed() == {"east->west", "east->central"}, broken.output[-3000:]
    workers = {ln.split()[0] for ln in broken.output.splitlines() if " FAILED " in ln}
    assert workers == {"[gw0]", "[gw1]"}, broken.output[-3000:]
    causes = {
        pair: next(ln for ln in broken.messages[pair].splitlines() if "likely cause: " in ln)
        for pair in broken.failed()
    }
    west, central = (
        causes[p].split("likely cause: ", 1)[1] for p in ("east->west", "east->central")
    )
    assert west == central, causes
    assert "CrashLoopBackOff" in west and "plugin/loop" in west, causes
