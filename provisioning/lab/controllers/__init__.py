"""The lab's controllers, registered in one list (STYLE.md point 13).

The daemon starts the asynchronous ones in this order (and stops them in reverse); every API
server store runs the settling ones, in this order, before a mutating call returns. A new
behaviour is one module with one class, plus one line here.
"""

from __future__ import annotations

from typing import Final

from provisioning.lab.controllers.base import (
    Controller,
    ControllerClass,
    LabContext,
    PodState,
    SettlingController,
)
from provisioning.lab.controllers.cluster_dns import ClusterDns
from provisioning.lab.controllers.deployment import DeploymentController
from provisioning.lab.controllers.echo import EchoServers
from provisioning.lab.controllers.endpoint_slices import EndpointSliceController
from provisioning.lab.controllers.endpoints import EndpointsController
from provisioning.lab.controllers.firewall import Firewall
from provisioning.lab.controllers.ingress_nginx import IngressNginx
from provisioning.lab.controllers.kube_proxy import KubeProxy
from provisioning.lab.controllers.kubelet import Kubelet
from provisioning.lab.controllers.load_balancer import LoadBalancers
from provisioning.lab.controllers.network_policy import NetworkPolicyController
from provisioning.lab.controllers.pod_events import PodEvents
from provisioning.lab.controllers.replicaset import ReplicaSetController

CONTROLLERS: Final[tuple[ControllerClass, ...]] = (
    DeploymentController,
    ReplicaSetController,
    EndpointsController,
    EndpointSliceController,
    PodEvents,
    EchoServers,
    Kubelet,
    KubeProxy,
    NetworkPolicyController,
    ClusterDns,
    IngressNginx,
    LoadBalancers,
    Firewall,
)

__all__ = [
    "CONTROLLERS",
    "Controller",
    "ControllerClass",
    "LabContext",
    "PodState",
    "SettlingController",
]
