"""The lab's image-to-behaviour mapping of container commands, and how the lab's cloud audit
reads router FORWARD rules (pure functions: no lab needed)."""

from __future__ import annotations

import shutil

import pytest

import provisioning.lab.apiserver  # noqa: F401 (first: the controllers package cycles through it)
from netconform.cloudaudit import ALL_PORTS, PortRange
from provisioning.lab.cloud import _rule
from provisioning.lab.controllers.podruntime import container_command, expand
from provisioning.lab.network import plan_lab
from provisioning.lab.saved_rules import SavedRule, SavedTable

WEST = plan_lab("t", ("central", "east", "west")).region("west")


def test_expand_follows_kubernetes_variable_references() -> None:
    env = {"PORT": "7000"}
    assert expand("$(PORT)", env) == "7000"
    assert expand("-p$(PORT)/$(MISSING)", env) == "-p7000/$(MISSING)"
    assert expand("$$(PORT)", env) == "$(PORT)"


@pytest.mark.skipif(shutil.which("sleep") is None or shutil.which("nc") is None, reason="tools")
def test_commands_run_unless_the_image_behaviour_stands_in() -> None:
    sleep = {"name": "c", "command": ["sleep", "3600"]}
    assert container_command(sleep, []) == (["sleep", "3600"], "command: sleep 3600")
    assert container_command({"name": "c", "args": ["netexec"]}, [8080])[0] is None
    probe = {"name": "c", "command": ["nc", "-lk", "-p", "$(P)"],
             "env": [{"name": "P", "value": "8080"}]}  # fmt: skip
    argv, why = container_command(probe, [8080])
    assert argv is None and "echo server stands in" in why
    assert container_command(probe, [])[0] == ["nc", "-lk", "-p", "8080"]
    missing = container_command({"name": "c", "command": ["/no/such/agnhost"]}, [])
    assert missing[0] is None and "not on this host" in missing[1]


def saved(line: str) -> SavedRule:
    """One `iptables-save` line as the cloud view reads it."""
    return SavedTable.parse(line).chains["FORWARD"][0]


def test_forward_rules_as_the_audit_reads_them() -> None:
    drop = _rule(WEST, saved("-A FORWARD -s 10.101.0.0/16 -p tcp -m tcp --dport 9092 -j DROP"), 1)
    assert drop is not None and not drop.allow
    assert drop.sources == ("10.101.0.0/16",) and drop.ports == (PortRange(9092, 9092),)
    accept = _rule(WEST, saved("-A FORWARD -d 10.102.0.0/16 -j ACCEPT"), 2)
    assert accept is not None and accept.allow and accept.ports == ALL_PORTS
    assert accept.sources == ("0.0.0.0/0",)
    assert _rule(WEST, saved("-A FORWARD -d 10.101.0.0/16 -j ACCEPT"), 3) is None  # not into west
    assert _rule(WEST, saved("-A FORWARD -p udp --dport 53 -j DROP"), 4) is None
    assert _rule(WEST, saved("-A FORWARD -m conntrack --ctstate INVALID -j DROP"), 5) is None
    assert _rule(WEST, saved("-A FORWARD ! -s 10.0.0.0/8 -j DROP"), 6) is None
