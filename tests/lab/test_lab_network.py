"""The lab's network itself: ClusterIP Services, hermeticity, leftovers, reports."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from netconform.cluster import ClusterClient
from netconform.topology import load_topology
from netconform.waits import wait_until
from provisioning.lab import control, network
from provisioning.lab.control import LabPaths
from reports.html import find_cli
from tests.labrun import run_suite

LABELS = {"app.kubernetes.io/managed-by": "netconform", "netconform.io/run-id": "selftest-net"}


NCH = f"nch{os.getpid() % 10000}"  # unique per test process


@pytest.fixture
def east(lab: LabPaths) -> Iterator[ClusterClient]:
    topology = load_topology(lab.topology)
    client = ClusterClient(topology.cluster("east"), topology.kubeconfig, topology.timeouts)
    yield client
    client.delete_labelled("east", "netconform.io/run-id=selftest-net")


def pod(name: str, labels: dict[str, str], port: int | None = None) -> dict[str, object]:
    container: dict[str, object] = {"name": "c", "image": "nicolaka/netshoot:v0.13"}
    if port:
        container["ports"] = [{"containerPort": port, "name": "http"}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "east", "labels": {**LABELS, **labels}},
        "spec": {"containers": [container]},
    }


def service(name: str, selector: dict[str, str]) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "east", "labels": dict(LABELS)},
        "spec": {"selector": selector, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def test_cluster_ip_service_reaches_its_pods_and_refuses_without_endpoints(
    east: ClusterClient,
) -> None:
    for name in ("echo-a", "echo-b"):
        east.apply(pod(name, {"app": "echo"}, port=8080))
    east.apply(pod("client", {"app": "client"}))
    east.apply(service("echo", {"app": "echo"}))
    east.apply(service("nobody", {"app": "nobody"}))
    east.wait_pods_ready("east", "netconform.io/run-id=selftest-net", 3)
    echo_ip = east.objects("Service", "east", "netconform.io/run-id=selftest-net")
    ips = {s.metadata.name: s.spec.cluster_ip for s in echo_ip}
    assert ips["echo"].startswith("10.201."), ips

    answered: set[str] = set()

    def both_backends_answered() -> bool:
        got = east.exec(
            "east", "client", ["curl", "-s", "--max-time", "2", f"http://{ips['echo']}/"]
        )
        if got.succeeded:
            answered.add(json.loads(got.stdout)["pod"])
        return answered == {"echo-a", "echo-b"}

    wait_until(
        both_backends_answered,
        timeout=20,
        name="service_balanced",
        describe=lambda: f"answered by {sorted(answered)}",
    )
    refused = east.exec("east", "client", ["nc", "-z", "-v", "-w", "2", ips["nobody"], "80"])
    assert refused.rc != 0 and "refused" in refused.stderr.lower(), refused


def _root_snapshot() -> dict[str, str]:
    def out(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout

    links = "\n".join(
        sorted(
            ln.split(":")[1].split("@")[0].strip() for ln in out("ip", "-o", "link").splitlines()
        )
    )
    return {
        "links": links,
        "addrs": out("ip", "-o", "addr"),
        "routes": out("ip", "route"),
        "iptables": "\n".join(
            ln
            for ln in out("iptables-save").splitlines()
            if not ln.startswith("#") and not ln.startswith(":")
        ),
    }


def test_lab_touches_nothing_outside_its_namespaces(lab: LabPaths, tmp_path: Path) -> None:
    before = _root_snapshot()
    paths = LabPaths(tmp_path / "hermetic")
    state = control.up(paths, regions=2, prefix=NCH)
    made = network.list_netns(NCH)
    during = _root_snapshot()
    control.down(paths)
    assert during == before, "the lab changed the root network namespace"
    # not the system pods (coredns, the ingress controller)
    infrastructure = [n for n in made if "-kube-system-" not in n and "-ingress-nginx-" not in n]
    assert len(infrastructure) == 1 + 2 * 3  # world, and per region a router and two nodes
    assert network.list_netns(NCH) == []
    assert control.read_state(paths) is None
    with pytest.raises(ProcessLookupError):
        os.kill(int(state["pid"]), 0)


def test_leftovers_of_interrupted_runs_are_removed(
    east: ClusterClient, lab: LabPaths, tmp_path: Path
) -> None:
    stale = pod("stale", {})
    stale["metadata"]["labels"]["netconform.io/run-id"] = "interrupted-run"  # type: ignore[index]
    east.apply(stale)
    run = run_suite(
        ["suites/pod_to_pod", "--topology", str(lab.topology), "-k", "east->east"], tmp_path
    )
    assert run.rc == 0, run.output[-2000:]
    assert "removed 1 leftover object(s) of earlier runs from east" in run.output
    assert not east.objects("Pod", "east", "netconform.io/run-id=interrupted-run")


def test_allure_results_carry_suite_and_pair_labels(lab: LabPaths, tmp_path: Path) -> None:
    results, html = tmp_path / "allure-results", tmp_path / "html"
    run = run_suite(
        [
            "suites/pod_to_pod",
            "--topology",
            str(lab.topology),
            "-k",
            "central->west",
            "--alluredir",
            str(results),
            "--allure-html",
            str(html),
        ],
        tmp_path,
    )
    assert run.rc == 0, run.output[-2000:]
    cases = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
    assert len(cases) == 1
    labels = {(lb["name"], lb["value"]) for lb in cases[0]["labels"]}
    assert {("suite", "pod-to-pod"), ("region_pair", "central->west")} <= labels
    names = [a["name"] for a in cases[0].get("attachments", [])]
    assert any("central->west" in n for n in names), names
    assert (results / "environment.properties").read_text().startswith("topology=lab")
    if find_cli() is None:
        pytest.skip("Allure CLI not installed (./run setup installs it): HTML not checked")
    assert (html / "index.html").stat().st_size > 10_000, run.output[-2000:]
    listed = json.loads((html / "test-results.json").read_text())["byId"].values()
    assert [t["name"] for t in listed] == ["test_pod_to_pod[central->west]"]


def test_ad_hoc_contexts_attach_without_a_topology_file(lab: LabPaths, tmp_path: Path) -> None:
    run = run_suite(
        ["suites/pod_to_pod", "--kubeconfig", str(lab.kubeconfig),
         "--context", "lab-east", "--context", "lab-west"],
        tmp_path,
    )  # fmt: skip
    assert run.rc == 0, run.output[-2000:]
    assert run.outcomes == {p: "passed" for p in ("east->east", "east->west", "west->east",
                                                  "west->west")}  # fmt: skip
