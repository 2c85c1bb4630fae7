"""Admission, defaulting and delete cascades per kind, registered in one table.

A kind without an entry gets the no-op `KindRules`; adding a kind's rules is one module and
one line here.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Final

from provisioning.lab.apiserver.kinds.base import KindRules
from provisioning.lab.apiserver.kinds.config import ConfigMapRules, SecretRules
from provisioning.lab.apiserver.kinds.deployment import DeploymentRules
from provisioning.lab.apiserver.kinds.namespace import NamespaceRules
from provisioning.lab.apiserver.kinds.networking import IngressRules, NetworkPolicyRules
from provisioning.lab.apiserver.kinds.pod import PodRules
from provisioning.lab.apiserver.kinds.replicaset import ReplicaSetRules
from provisioning.lab.apiserver.kinds.service import ServiceRules

KIND_RULES: Final[defaultdict[str, KindRules]] = defaultdict(
    KindRules,
    {
        "Namespace": NamespaceRules(),
        "Pod": PodRules(),
        "Service": ServiceRules(),
        "ConfigMap": ConfigMapRules(),
        "Secret": SecretRules(),
        "Deployment": DeploymentRules(),
        "ReplicaSet": ReplicaSetRules(),
        "Ingress": IngressRules(),
        "NetworkPolicy": NetworkPolicyRules(),
    },
)

__all__ = ["KIND_RULES", "KindRules"]
