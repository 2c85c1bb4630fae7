"""One broken thing tells one story: for each lab fault, a real run of several suites ends with
a diagnosis naming the fault's own component and place first, every failure text it covers
leads with it, and no suite's own hint claims what the fault's data contradicts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioning.lab import control
from provisioning.lab.control import LabPaths
from tests.labrun import SuiteRun, run_suite

#: claims that would tell another story than a cut path (the last round's contradictions)
NOT_A_PATH = ("kube-proxy or the pod network", "kube-dns pods", "other ports between these")

FAULTS = {
    "cut-peering": (
        ["cut-peering", "east", "west"],
        [
            "suites/pod_to_pod",
            "suites/firewall",
            "suites/dns/test_dns.py",
            "suites/services/test_services.py",
        ],
        r"east<->west path down: every probe kind fails across it",
        NOT_A_PATH,
    ),
    "firewall-close": (
        ["firewall-close", "east", "west", "9092"],
        ["suites/pod_to_pod", "suites/firewall"],
        r"east(<->|->)west tcp/9092 blocked",
        ("no required port connects", "path down"),
    ),
    "dns-down": (
        ["dns-down", "west"],
        ["suites/pod_to_pod", "suites/dns/test_dns.py"],
        r"west's DNS down: every lookup through it fails",
        ("path down", "peering"),
    ),
    "lb-down": (
        ["lb-down", "west/kube-system/kube-dns-lb"],
        ["suites/pod_to_pod", "suites/dns/test_dns.py", "suites/dns/test_dns_lb.py"],
        r"west's names cannot be resolved from other clusters.*west's DNS load balancer",
        ("path down", "west's DNS down"),
    ),
    "policy-extra-deny": (
        ["policy-extra-deny", "east/east"],
        ["suites/pod_to_pod", "suites/network_policy/test_policies.py"],
        r"NetworkPolicy netconform-fault-deny-all denies all ingress and egress of the pods "
        r"in east/east",
        ("path down", "blocked: every probe to that port"),
    ),
    "nodeport-off": (
        ["nodeport-off", "west-node-1"],
        ["suites/pod_to_pod", "suites/services/test_services.py"],
        r"NodePorts of node west/west-node-1 closed",
        ("path down", "its endpoints or their pods"),
    ),
    "loss": (
        ["loss", "east", "west", "30"],
        ["suites/pod_to_pod", "suites/source_address"],
        r"packet loss east(<->|->)west: \d+ of \d+ pings lost",
        ("path down",),
    ),
}


@pytest.fixture
def healed(lab: LabPaths) -> Iterator[LabPaths]:
    yield lab
    control.call(lab, "POST", "/heal", {})


def diagnosis_of(run: SuiteRun) -> list[str]:
    """The numbered lines of the terminal's `netconform diagnosis` section."""
    text = run.output.split(" netconform diagnosis ", 1)
    assert len(text) == 2, f"no diagnosis section:\n{run.output[-3000:]}"
    lines = text[1].splitlines()[1:]
    return [line for line in lines if re.match(r"\d+\. ", line)][:20]


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_each_fault_is_one_story(healed: LabPaths, tmp_path: Path, fault: str) -> None:
    args, suites, expected, contradicting = FAULTS[fault]
    control.call(healed, "POST", "/fault", {"name": args[0], "args": args[1:]})
    run = run_suite([*suites, "--topology", str(healed.topology)], tmp_path, timeout=400)
    assert run.rc == 1, f"{fault} failed nothing:\n{run.output[-3000:]}"
    found = diagnosis_of(run)
    assert re.search(expected, found[0]), f"{fault}: diagnosis {found}"
    shared = found[0].split(". ", 1)[1].split(" [", 1)[0]
    # test ids repeat across tests (`[central]`): read every failure text kept, by its shape
    failures = [m for m in run.messages.values() if "case(s) failed" in m or "wrong out of" in m]
    assert failures, f"{fault}: no failure text:\n{run.output[-3000:]}"
    for message in failures:
        assert f"see diagnosis: {shared}" in message, f"{fault}: lacks it:\n{message[:3000]}"
        for claim in contradicting:
            assert claim not in message, f"{fault}: claims {claim!r}:\n{message[:3000]}"
