"""Probes a source cannot run: left out of its batch, reported not supported with the reason;
a slice made only of such cases is skipped, one with others runs them."""

from __future__ import annotations

from typing import Any

from netconform.check import Check
from netconform.outcomes import ALLOW, Case, Endpoint, Verdict, pod
from netconform.podsecurity import compliant, compliant_manifest, missing_capability
from netconform.probes import Probe
from netconform.result import Result
from netconform.scenario import Scenario, always_allow
from netconform.vantage import Vantage

EAST = pod("east", "probe-0-0", "10.101.1.2")
WEST = pod("west", "probe-0-0", "10.102.1.2")
ICMP, TCP = Probe("icmp"), Probe("tcp", 8080)
REASON = "east enforces restricted, ICMP needs NET_RAW"


def no_icmp_from_east(src: Endpoint, probe: Probe) -> str:
    return REASON if src.cluster == "east" and probe.kind == "icmp" else ""


def scenario() -> Scenario:
    vantages: dict[Endpoint, Any] = {EAST: Vantage, WEST: Vantage}
    return Scenario(vantages, [EAST, WEST], [ICMP, TCP], unsupported=no_icmp_from_east)


def test_unsupported_probes_leave_the_batch_and_become_not_supported_cases() -> None:
    plan = scenario().tasks()
    assert [t.probe.kind for t in plan[EAST]] == ["tcp"]
    assert [t.probe.kind for t in plan[WEST]] == ["icmp", "tcp"]
    skipped = scenario().not_supported(always_allow)
    assert [(c.source, c.destination, c.protocol) for c in skipped] == [(EAST, WEST, "icmp")]
    assert skipped[0].observed.verdict == Verdict.NOT_SUPPORTED and skipped[0].detail == REASON


def test_a_slice_of_only_unsupported_cases_is_skipped_with_the_reason() -> None:
    skipped = scenario().not_supported(always_allow)
    tcp = Case(EAST, WEST, "tcp", 8080, ALLOW, ALLOW, "connected")
    check = Check("c", "", lambda _env: scenario())
    part, failure = check.verdict(Result((), skipped), "east->west")
    assert failure == "" and not part.cases and part.unsupported_reasons == REASON
    part, failure = check.verdict(Result((tcp,), skipped), "east->west")
    assert failure == "" and part.cases == (tcp,) and part.not_supported == skipped
    assert check.verdict(Result((tcp,), skipped), "west->east")[0].not_supported == ()


def test_restricted_takes_net_raw_and_probe_pods_comply() -> None:
    assert missing_capability("restricted", frozenset({"NET_RAW"})) == "NET_RAW"
    assert missing_capability("baseline", frozenset({"NET_RAW"})) == ""
    assert missing_capability("restricted", frozenset()) == ""
    pod_manifest = {"spec": {"containers": [{"name": "probe"}]}}
    assert compliant(pod_manifest, "baseline") is pod_manifest
    spec = compliant(pod_manifest, "restricted")["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["containers"][0]["securityContext"] == {
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}  # fmt: skip


def test_workload_templates_comply_too() -> None:
    deployment = {"kind": "Deployment", "spec": {"template": {"spec": {"containers": [
        {"name": "echo"}]}}}}  # fmt: skip
    made = compliant_manifest(deployment, "restricted")
    template = made["spec"]["template"]["spec"]
    assert template["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert compliant_manifest(deployment, "baseline") is deployment
    service = {"kind": "Service", "spec": {"ports": [{"port": 80}]}}
    assert compliant_manifest(service, "restricted") is service
