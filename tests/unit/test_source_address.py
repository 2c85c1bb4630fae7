"""Source address kept, the aws-node CNI note, and NetworkPolicy hints for pod-to-pod: pure."""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s

from netconform.cni import aws_node_env, aws_node_note
from netconform.outcomes import ALLOW, TIMEOUT, Case, HttpStatus, Verdict, pod
from netconform.policy.model import Policy
from netconform.policyhint import policy_cause, policy_note, selecting
from netconform.result import Result
from netconform.scenario import Scenario
from netconform.srcaddr import ClientAddress, judge_source, seen_address, source_cause

EAST = pod("east", "probe-0-0", "10.101.1.4", "n1")
WEST = pod("west", "srcaddr-0-0", "10.102.1.7", "n2")


def http_case(body: str, detail: str = "other-region") -> Case:
    seen = HttpStatus(Verdict.ALLOW, 200, "", body)
    expected = ClientAddress(Verdict.ALLOW, EAST.ip)
    return Case(EAST, WEST, "http", 8080, expected, seen, f"{detail}, HTTP 200 from {WEST.ip}")


def judged(*cases: Case) -> Result:
    return judge_source(Scenario({}, [], []), lambda *_: ALLOW, Result(cases))


def test_seen_address_reads_lab_json_and_agnhost_clientip() -> None:
    assert seen_address('{"pod": "x", "client": "10.101.1.4"}') == "10.101.1.4"
    assert seen_address("10.101.1.4:51234") == "10.101.1.4"
    assert seen_address("[fd00::4]:51234") == "fd00::4"
    assert seen_address("") == ""


def test_own_address_passes_and_a_nat_address_fails_naming_it() -> None:
    kept, natted = judged(
        http_case('{"client": "10.101.1.4"}'), http_case('{"client": "172.31.0.1"}')
    ).cases
    assert kept.passed and "the echo saw 10.101.1.4" in kept.detail
    assert not natted.passed and str(natted.observed) == "CLIENT 172.31.0.1"
    cause = source_cause([kept, natted])
    assert "source NAT on the path (east->west seen as CLIENT 172.31.0.1)" in cause
    assert "ipBlock peers on pod CIDRs no longer match" in cause


def test_no_answer_is_not_called_nat() -> None:
    case = Case(EAST, WEST, "http", 8080, ClientAddress(Verdict.ALLOW, EAST.ip), TIMEOUT, "x")
    assert judged(case).cases == (case,)
    assert "source NAT" not in source_cause([case])


def daemonset(env: list[dict[str, str]], name: str = "aws-node") -> dict[str, Any]:
    containers = [{"name": name, "env": env}]
    return {"spec": {"template": {"spec": {"containers": containers}}}}


def test_aws_node_default_snat_is_named_in_the_cause() -> None:
    env = aws_node_env(daemonset([{"name": "AWS_VPC_K8S_CNI_EXTERNALSNAT", "value": "false"}]))
    note = aws_node_note(env)
    assert "AWS_VPC_K8S_CNI_EXTERNALSNAT=false" in note
    assert "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS=unset" in note
    case = judged(http_case('{"client": "172.31.0.1"}', f"other-region; {note}")).cases[0]
    assert note in source_cause([case])


def test_aws_node_read_from_client_model_objects_and_absent_container() -> None:
    model = k8s.V1DaemonSet(
        spec=k8s.V1DaemonSetSpec(
            selector=k8s.V1LabelSelector(),
            template=k8s.V1PodTemplateSpec(
                spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="aws-node", env=[
                    k8s.V1EnvVar(name="AWS_VPC_K8S_CNI_EXTERNALSNAT", value="true"),
                    k8s.V1EnvVar(name="AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS", value="10.0.0.0/8"),
                ])])
            ),
        )
    )  # fmt: skip
    env = aws_node_env(model)
    assert env == {
        "AWS_VPC_K8S_CNI_EXTERNALSNAT": "true",
        "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS": "10.0.0.0/8",
    }
    assert "EXTERNALSNAT=true" in aws_node_note(env)
    assert aws_node_env(daemonset([], name="kube-proxy")) is None and aws_node_note(None) == ""
    assert aws_node_env({}) is None


def test_policy_hint_names_the_policies_selecting_failing_pods() -> None:
    deny = Policy.from_api(
        "east",
        {"metadata": {"name": "deny", "namespace": "east"},
         "spec": {"podSelector": {"matchLabels": {"role": "probe"}}, "policyTypes": ["Ingress"]}},
    )  # fmt: skip
    assert selecting([deny], "east", {"role": "probe"}) == [deny]
    assert selecting([deny], "west", {"role": "probe"}) == []
    assert selecting([deny], "east", {"role": "other"}) == []
    selected = {EAST: ["east/east/deny[Ingress]"]}
    note = policy_note(selected, WEST, EAST)
    assert note == "NetworkPolicy east/east/deny[Ingress] selects the destination"
    failed = Case(WEST, EAST, "tcp", 8080, ALLOW, TIMEOUT, f"other-region; {note}, timed out")
    passed = Case(EAST, WEST, "tcp", 8080, ALLOW, ALLOW, "other-region, connected")
    assert "NetworkPolicies select the failing pods: east/east/deny[Ingress]" in policy_cause(
        [failed, passed]
    )
    assert policy_cause([passed]) == ""
