"""The tls suite against the real lab: healthy, `curl -I` by hand shows the 308 and the https
Location; each TLS fault fails exactly its aspects of its cluster, naming host, cluster and
expected vs observed; TLS 1.0 switched on by hand in a controller's ConfigMap fails only that
cluster's protocols test."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from netconform.cluster import ClusterClient
from netconform.ingress import lb_address
from netconform.topology import load_topology
from provisioning.lab import control
from provisioning.lab.control import LabPaths
from tests.labrun import SuiteRun, remove_run, run_suite
from tests.tools import kubectl_binary

SUITE = "suites/tls"
RUN_ID = "selftest-tls"
HOST = "secure.example"


@pytest.fixture(scope="module")
def kept(lab: LabPaths) -> Iterator[LabPaths]:
    yield lab
    control.call(lab, "POST", "/heal", {})
    remove_run(lab, RUN_ID)


def suite(lab: LabPaths, tmp_path: Path) -> SuiteRun:
    args = [SUITE, "--topology", str(lab.topology), "--run-id", RUN_ID, "--keep-workloads"]
    return run_suite(args, tmp_path)


def broken(lab: LabPaths, tmp_path: Path, name: str, *args: str) -> SuiteRun:
    control.call(lab, "POST", "/fault", {"name": name, "args": list(args)})
    try:
        return suite(lab, tmp_path)
    finally:
        control.call(lab, "POST", "/heal", {})


def keys(cluster: str, *aspects: str) -> set[str]:
    return {f"{cluster}/{HOST}:{a}" for a in aspects}


def test_healthy_and_curl_by_hand(kept: LabPaths, tmp_path: Path) -> None:
    run = suite(kept, tmp_path)
    assert run.rc == 0, run.output[-3000:]
    assert len(run.outcomes) == 21 and set(run.outcomes.values()) == {"passed"}
    topology = load_topology(kept.topology)
    client = ClusterClient(topology.cluster("east"), topology.kubeconfig, topology.timeouts)
    lb = lb_address(client, "ingress-nginx/ingress-nginx-controller")
    world = control.call(kept, "GET", "/netns?name=world")["netns"]
    head = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            world,
            "curl",
            "-sS",
            "-I",
            "-m",
            "5",
            "-H",
            f"Host: {HOST}",
            f"http://{lb}/",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert head.startswith("HTTP/1.1 308"), head
    assert f"Location: https://{HOST}" in head and "Strict-Transport-Security" not in head


def test_wrong_cert_fails_served_chain_and_san_of_that_cluster(
    kept: LabPaths, tmp_path: Path
) -> None:
    suite(kept, tmp_path)  # the Secret exists, so the fault has a certificate to swap
    run = broken(kept, tmp_path, "wrong-cert", "east", HOST)
    assert run.failed() == keys("east", "served", "chain", "san"), run.output[-3000:]
    message = run.messages[f"east/{HOST}:san"]
    assert f"expected CERT names {HOST} observed CERT wrong name" in message, message
    assert "serves another certificate for secure.example" in run.messages[f"east/{HOST}:served"]


def test_expired_cert_names_the_dates(kept: LabPaths, tmp_path: Path) -> None:
    suite(kept, tmp_path)
    run = broken(kept, tmp_path, "expired-cert", "west", HOST)
    assert run.failed() == keys("west", "served", "chain", "expiry"), run.output[-3000:]
    message = run.messages[f"west/{HOST}:expiry"]
    assert f"observed CERT expired: certificate for {HOST} expired 20" in message, message
    assert "day ago" in message or "days ago" in message, message


def test_redirect_off_fails_only_the_redirect(kept: LabPaths, tmp_path: Path) -> None:
    run = broken(kept, tmp_path, "redirect-off", "central")
    assert run.failed() == keys("central", "redirect"), run.output[-3000:]
    message = run.messages[f"central/{HOST}:redirect"]
    assert f"expected HTTP 308 -> https://{HOST}/netconform/tls observed HTTP 200" in message
    assert "serves plain HTTP instead of redirecting it to https" in message


def test_tls_1_0_switched_on_by_hand(kept: LabPaths, tmp_path: Path) -> None:
    """A user's edit of the controller ConfigMap, as the ingress-nginx docs show it."""
    patch = {
        "data": {
            "ssl-protocols": "TLSv1 TLSv1.1 TLSv1.2 TLSv1.3",
            "ssl-ciphers": "DEFAULT:@SECLEVEL=0",
        }
    }
    base = [
        kubectl_binary(),
        "--kubeconfig",
        str(kept.kubeconfig),
        "--context",
        "lab-west",
        "-n",
        "ingress-nginx",
    ]
    subprocess.run(
        [
            *base,
            "patch",
            "configmap",
            "ingress-nginx-controller",
            "--type",
            "merge",
            "-p",
            json.dumps(patch),
        ],
        check=True,
        capture_output=True,
    )
    try:
        run = suite(kept, tmp_path)
    finally:
        subprocess.run(
            [
                *base,
                "patch",
                "configmap",
                "ingress-nginx-controller",
                "--type",
                "json",
                "-p",
                '[{"op": "remove", "path": "/data"}]',
            ],
            check=True,
            capture_output=True,
        )
    assert run.failed() == keys("west", "protocols"), run.output[-3000:]
    message = run.messages[f"west/{HOST}:protocols"]
    assert "expected TLSv1 REFUSED observed ACCEPTED" in message, message
    assert "expected TLSv1.1 REFUSED observed ACCEPTED" in message, message
