"""What a lab controller writes into a node's tables: its own chains only, stale ones deleted."""

from __future__ import annotations

import pytest

from netconform.errors import LabError
from provisioning.lab.controllers.kube_proxy import JUMPS, proxy_rules
from provisioning.lab.owned_chains import ChainOwner, TableRules

OWNER = ChainOwner(("KUBE-",), JUMPS)
SERVICE = {
    "metadata": {"namespace": "east", "name": "web"},
    "spec": {"clusterIP": "10.200.0.9", "ports": [{"port": 80, "targetPort": 8080}]},
}
ENDPOINTS = {
    "metadata": {"namespace": "east", "name": "web"},
    "subsets": [{"addresses": [{"ip": "10.101.1.5", "nodeName": "east-node-0"}],
                 "ports": [{"port": 8080}]}],
}  # fmt: skip


def test_kube_proxy_declares_only_its_own_chains_and_never_a_builtin_one() -> None:
    text = OWNER.render(proxy_rules([SERVICE], [ENDPOINTS], ("east-node-0", "10.101.0.10")), {})
    declared = [line for line in text.splitlines() if line.startswith(":")]
    assert declared and all(line.startswith(":KUBE-") for line in declared)
    rules = [line for line in text.splitlines() if line.startswith("-A ")]
    assert all(line.split()[1].startswith("KUBE-") for line in rules)
    assert "-A KUBE-SERVICES -d 10.200.0.9/32 -p tcp --dport 80 -j KUBE-SVC-0" in rules
    assert "-A KUBE-SVC-0-0 -p tcp -j DNAT --to-destination 10.101.1.5:8080" in rules


def test_chains_written_before_and_gone_now_are_flushed_then_deleted() -> None:
    before = {"nat": {"KUBE-SERVICES", "KUBE-SVC-0", "KUBE-SVC-0-0"}, "filter": {"KUBE-FW-0"}}
    want = {"nat": TableRules(("KUBE-SERVICES",), ()), "filter": TableRules((), ())}
    text = OWNER.render(want, before)
    assert text == (
        "*filter\n:KUBE-FW-0 - [0:0]\n-X KUBE-FW-0\nCOMMIT\n"
        "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-0 - [0:0]\n:KUBE-SVC-0-0 - [0:0]\n"
        "-X KUBE-SVC-0\n-X KUBE-SVC-0-0\nCOMMIT\n"
    )


@pytest.mark.parametrize(
    ("chains", "rules", "says"),
    [
        (("PREROUTING",), (), "chain PREROUTING is not one of"),
        (("OTHER-CHAIN",), (), "chain OTHER-CHAIN is not one of"),
        (("KUBE-SERVICES",), ("-A PREROUTING -j KUBE-SERVICES",), "rule outside the owned"),
        (("KUBE-SERVICES",), ("-I KUBE-SERVICES 1 -j DROP",), "rule outside the owned"),
    ],
)
def test_an_owner_refuses_to_write_outside_its_chains(
    chains: tuple[str, ...], rules: tuple[str, ...], says: str
) -> None:
    with pytest.raises(LabError, match=says):
        OWNER.render({"nat": TableRules(chains, rules)}, {})
