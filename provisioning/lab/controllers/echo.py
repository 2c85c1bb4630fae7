"""Echo servers: every declared TCP containerPort of a pod answers with its pod, node, region
and the client's address (a bare line, or an HTTP response to an HTTP request); every declared
UDP containerPort answers each datagram with the same line (`provisioning.lab.echo.answers`).

A pod hook of the kubelet: the ports are bound inside the pod's namespace once it is wired and
before the pod is reported Running, so a Running pod already accepts. The answering runs in a
process per node (`echo.worker`), as a node's containers run beside its kubelet: a busy lab
daemon (API servers, controllers) does not delay the answers."""

from __future__ import annotations

import asyncio
import socket
from typing import ClassVar

from provisioning.lab.apiserver.model import Event, Obj
from provisioning.lab.controllers.base import Controller, LabContext, PodState
from provisioning.lab.controllers.cluster_dns import is_dns_pod
from provisioning.lab.controllers.ingress_nginx import is_ingress_pod
from provisioning.lab.echo.answers import Identity
from provisioning.lab.echo.process import STOP_GRACE, NodeEcho
from provisioning.lab.nsenter import bind_udp, listen_tcp


class EchoServers(Controller):
    name: ClassVar[str] = "echo-servers"
    watches: ClassVar[frozenset[str]] = frozenset()  # driven by the kubelet's pod hooks

    def __init__(self) -> None:
        self.nodes: dict[tuple[str, str], NodeEcho] = {}
        self._starting: dict[tuple[str, str], asyncio.Task[NodeEcho]] = {}
        self._states: dict[str, PodState] = {}
        """Pods served, by namespace (their log lines come back by it)."""

    async def start(self, lab: LabContext) -> None:
        await super().start(lab)
        lab.pod_hooks.append(self)

    async def on_event(self, cluster: str, event: Event) -> None:
        """Nothing: pods come through `pod_started`."""

    async def pod_started(self, state: PodState) -> None:
        if is_dns_pod(state.spec) or is_ingress_pod(state.spec):
            return  # CoreDNS and ingress-nginx pods serve themselves (cluster_dns, ingress_nginx)
        tcp_ports, udp_ports = ports_of(state.spec, "TCP"), ports_of(state.spec, "UDP")
        if not tcp_ports and not udp_ports:
            return
        node = await self._node(state.cluster, state.node.name)
        tcp: list[tuple[int, socket.socket]] = []
        udp: list[tuple[int, socket.socket]] = []
        try:
            tcp += [(port, listen_tcp(state.netns, port)) for port in tcp_ports]
            udp += [(port, bind_udp(state.netns, port)) for port in udp_ports]
        except OSError:
            for _, sock in tcp + udp:
                sock.close()
            raise
        self._states[state.netns] = state
        node.serve(state.netns, self._identity(state), tcp, udp)
        state.serving.extend(tcp_ports)

    def pod_stopping(self, state: PodState) -> None:
        if self._states.pop(state.netns, None) is not None:  # its node's worker serves it
            self.nodes[state.cluster, state.node.name].forget(state.netns)

    async def stop(self) -> None:
        for node in self.nodes.values():
            node.close()
        await asyncio.gather(*(node.wait(STOP_GRACE) for node in self.nodes.values()))
        self.nodes.clear()

    async def _node(self, cluster: str, name: str) -> NodeEcho:
        """The node's echo process, started by the first pod that needs it (again by the next
        pod when that start failed)."""
        key = (cluster, name)
        task = self._starting.get(key)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = self._starting[key] = asyncio.get_running_loop().create_task(self._spawn(key))
        return await asyncio.shield(task)

    async def _spawn(self, key: tuple[str, str]) -> NodeEcho:
        node = NodeEcho(f"{key[0]}/{key[1]}", self._log, self.lab.procs)
        await node.start()
        self.nodes[key] = node
        return node

    def _log(self, netns: str, line: str) -> None:
        state = self._states.get(netns)
        if state is not None:
            state.log.append(line)

    def _identity(self, state: PodState) -> Identity:
        return Identity(
            pod=state.name,
            namespace=state.namespace,
            node=state.node.name,
            region=self.lab.region(state.cluster).name,
            cluster=state.cluster,
            ip=state.ip,
            track=track_of(state.labels),
        )


def track_of(labels: dict[str, str]) -> str:
    """The pod's release track (`track: stable|canary`, the Kubernetes docs' canary label)."""
    return str(labels.get("track", ""))


def ports_of(spec: Obj, protocol: str) -> list[int]:
    """The declared containerPorts of a pod spec with `protocol`, sorted."""
    ports = []
    for container in spec.get("containers", []):
        for port in container.get("ports", []) or []:
            if port.get("protocol", "TCP") == protocol:
                ports.append(int(port["containerPort"]))
    return sorted(set(ports))
