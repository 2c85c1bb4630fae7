"""The NetworkPolicy oracle: pure, no I/O; see `netconform.policy.evaluate` for the semantics."""

from netconform.policy.evaluate import PolicySet, traffic
from netconform.policy.model import (
    ICMP,
    ContainerPort,
    IpBlock,
    NamespaceInfo,
    Peer,
    Pod,
    Policy,
    PolicyError,
    PortRule,
    Requirement,
    Rule,
    Selector,
    labels,
)
from netconform.policy.oracle import PolicyOracle, protocol_port

__all__ = [
    "ICMP",
    "ContainerPort",
    "IpBlock",
    "NamespaceInfo",
    "Peer",
    "Pod",
    "Policy",
    "PolicyError",
    "PolicyOracle",
    "PolicySet",
    "PortRule",
    "Requirement",
    "Rule",
    "Selector",
    "labels",
    "protocol_port",
    "traffic",
]
