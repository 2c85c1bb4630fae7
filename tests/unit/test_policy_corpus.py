"""The oracle against the generated corpus (tests/unit/policy_corpus.py): every case, every
ordered pair of distinct pods, TCP/UDP/SCTP on 80 and 81, agrees with the reference reading of
the API reference, one case at a time (`allowed`) and a whole port at once (`matrix`)."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from netconform.policy import ContainerPort as Port
from netconform.policy import NamespaceInfo, Pod, Policy, PolicyError, PolicySet
from netconform.policy import labels as as_labels
from tests.unit.policy_corpus import PROBES, REFUSED, Case, World, fixed_world, generate
from tests.unit.policy_corpus import reference_allowed as reference

WORLD = fixed_world()
CORPUS = generate(WORLD)
CLUSTER = "c"


def oracle_world(world: World) -> tuple[list[NamespaceInfo], list[Pod]]:
    spaces = [NamespaceInfo(CLUSTER, world.real[n], as_labels({"ns": n})) for n in world.real]
    pods = [
        Pod(CLUSTER, world.real[p.namespace], p.name, p.ip, as_labels(p.labels),
            tuple(Port(number, name, proto) for name, proto, number in p.ports))
        for p in world.pods
    ]  # fmt: skip
    return spaces, pods


def disagreements(case: Case, policies: list[Policy]) -> list[str]:
    spaces, pods = oracle_world(WORLD)
    ps = PolicySet(policies, spaces, pods)
    wrong = []
    for proto, port in PROBES:
        rows = ps.matrix(port, proto)
        for i, src in enumerate(WORLD.pods):
            for j, dst in enumerate(WORLD.pods):
                if i == j:
                    continue
                want = reference(WORLD, case.policies, src, dst, proto, port)
                got = ps.allowed(i, j, port, proto)
                if got != want or bool(rows[i] >> j & 1) != want:
                    verdict = "allow" if want else "deny"
                    wrong.append(f"{src.key} -> {dst.key} {proto}/{port}: reference {verdict}")
    return wrong


def read(case: Case) -> list[Policy]:
    return [Policy.from_api(CLUSTER, p) for p in case.policies]


def test_the_corpus_is_several_hundred_cases_of_every_form() -> None:
    assert len(CORPUS) >= 300 and len({c.name for c in CORPUS}) == len(CORPUS)
    tags = Counter(t for c in CORPUS for t in c.tags)
    for tag in ("ingress", "egress", "2-peer", "2-port", "named-port", "end-port", "SCTP",
                "UDP", "ipblock with except", "nil pods + empty ns", "empty pods + nil ns",
                "types-empty", "types-absent", "union", "target"):  # fmt: skip
        assert tags[tag] > 0, tag
    print(f"{len(CORPUS)} cases x {len(WORLD.pods) * (len(WORLD.pods) - 1)} pairs x "
          f"{len(PROBES)} probes")  # fmt: skip


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_the_oracle_agrees_with_the_reference(case: Case) -> None:
    wrong = disagreements(case, read(case))
    assert not wrong, f"{case.name}: {len(wrong)} wrong\n" + "\n".join(wrong[:20])


@pytest.mark.parametrize(("name", "spec"), REFUSED, ids=[r[0] for r in REFUSED])
def test_what_the_api_server_refuses_the_oracle_refuses(name: str, spec: dict[str, object]) -> None:
    with pytest.raises(PolicyError, match="the API server refuses it"):
        Policy.from_api(CLUSTER, {"metadata": {"name": "r", "namespace": "x"}, "spec": spec})


def test_the_corpus_catches_the_empty_policy_types_misreading() -> None:
    """The corpus can fail: read `policyTypes: []` as "no direction" (the lab's and the
    oracle's old shared reading) and the cases with it disagree, as unexpected allows."""
    empty = [c for c in CORPUS if "types-empty" in c.tags]
    wrong = 0
    for case in empty:
        lenient = [dataclasses.replace(p, types=()) for p in read(case)]
        found = disagreements(case, lenient)
        assert all("reference deny" in line for line in found), found
        wrong += len(found)
    assert wrong >= 100, wrong
