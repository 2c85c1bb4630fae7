"""The kubelet: a scheduled pod becomes a network namespace wired to its node (VPC CNI style,
an address from the node's slice of the VPC), pod hooks run inside it, and the pod is reported
Running; a deleted pod is unwired. Exec and logs of the API server end here too."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import shutil
from typing import ClassVar

from netconform.errors import LabError
from provisioning.lab import network
from provisioning.lab.apiserver.errors import ApiError
from provisioning.lab.apiserver.model import Event, Obj
from provisioning.lab.controllers.base import Controller, LabContext, PodState
from provisioning.lab.controllers.confinement import confinement
from provisioning.lab.network import POD_GATEWAY, NodePlan

log = logging.getLogger("netconform.lab.kubelet")


class Kubelet(Controller):
    name: ClassVar[str] = "kubelet"
    watches: ClassVar[frozenset[str]] = frozenset({"Pod"})

    def __init__(self) -> None:
        self._next_host: dict[str, int] = {}
        self._ips_in_use: set[str] = set()
        self._dev_counter = 0

    async def on_event(self, cluster: str, event: Event) -> None:
        """Slow work runs in tasks so API calls return at once."""
        if event.type == "ADDED" and event.obj["spec"].get("nodeName"):
            self.lab.tasks.spawn(self._start_pod(cluster, event.obj))
        elif event.type == "DELETED":
            self.lab.tasks.spawn(self._stop_pod(cluster, event.obj))

    def _node(self, cluster: str, node_name: str) -> NodePlan:
        for node in self.lab.region(cluster).nodes:
            if node.name == node_name:
                return node
        raise LabError(f"pod scheduled to unknown node {node_name!r} in {cluster}")

    def _allocate_ip(self, node: NodePlan) -> str:
        net = ipaddress.IPv4Network(node.pod_cidr)
        start = self._next_host.get(node.name, 2)
        for offset in range(net.num_addresses - 3):
            host = 2 + (start - 2 + offset) % (net.num_addresses - 3)
            candidate = str(net.network_address + host)
            if candidate not in self._ips_in_use:
                self._next_host[node.name] = host + 1
                self._ips_in_use.add(candidate)  # until its pod is fully unwired
                return candidate
        raise LabError(f"node {node.name} has no pod addresses left in {node.pod_cidr}")

    async def _start_pod(self, cluster: str, pod: Obj) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        node = self._node(cluster, spec["nodeName"])
        uid = str(meta.get("uid", ""))[:8] or str(self._dev_counter)
        self._dev_counter += 1
        state = PodState(
            cluster=cluster,
            namespace=meta["namespace"],
            name=meta["name"],
            node=node,
            # the uid keeps a re-created pod of the same name apart from one still being removed
            netns=f"{self.lab.plan.prefix}-{cluster}-{meta['namespace']}-{meta['name']}-{uid}",
            dev=f"p{self._dev_counter}",
            ip=self._allocate_ip(node),
            spec=spec,
        )
        key = (cluster, state.namespace, state.name)
        self.lab.pods[key] = state
        try:
            await asyncio.to_thread(wire_pod, state)
            for hook in self.lab.pod_hooks:
                await hook.pod_started(state)
        finally:
            state.started.set()
        if self.lab.pods.get(key) is not state:
            return  # deleted while it was being wired: _stop_pod undoes it
        state.log.append(
            f"pod {state.name} on {node.name} ip {state.ip} serving tcp {state.serving}"
        )
        try:
            await self.lab.store(cluster).update_pod_status(
                state.namespace, state.name, running_status(state)
            )
        except ApiError:
            log.info("pod %s/%s deleted while it was being wired", state.namespace, state.name)
            return
        self._started_events(cluster, pod)

    def _started_events(self, cluster: str, pod: Obj) -> None:
        for c in pod["spec"].get("containers") or []:
            image, name = c.get("image", ""), c["name"]
            for reason, message in (
                ("Pulled", f'Container image "{image}" already present on machine'),
                ("Created", f"Created container: {name}"),
                ("Started", f"Started container {name}"),
            ):
                self.lab.record_event(cluster, pod, reason, message, "kubelet")

    async def _stop_pod(self, cluster: str, pod: Obj) -> None:
        meta = pod["metadata"]
        state = self.lab.pods.pop((cluster, meta["namespace"], meta["name"]), None)
        if state is None:
            return
        await state.started.wait()  # never unwire half-way through wiring
        for hook in self.lab.pod_hooks:
            hook.pod_stopping(state)
        await asyncio.to_thread(unwire_pod, state)
        self._ips_in_use.discard(state.ip)


async def exec_in_pod(
    lab: LabContext, cluster: str, namespace: str, pod: str, container: str, argv: list[str]
) -> asyncio.subprocess.Process:
    """ExecHandler for the API server: the host's tools inside the pod's namespace."""
    state = lab.pods.get((cluster, namespace, pod))
    if state is None:
        raise LabError(f"pod {namespace}/{pod} has no network namespace yet")
    if not argv or ("/" not in argv[0] and shutil.which(argv[0]) is None):
        raise FileNotFoundError(argv[0] if argv else "")
    state.execs += 1
    pipe = asyncio.subprocess.PIPE
    argv = [*confinement(state.spec, container), *argv]
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", state.netns, *argv, stdin=pipe, stdout=pipe, stderr=pipe
    )
    lab.procs.add(proc)
    lab.tasks.spawn(_reap(lab, proc))
    return proc


async def _reap(lab: LabContext, proc: asyncio.subprocess.Process) -> None:
    await proc.wait()
    lab.procs.discard(proc)


async def pod_log(lab: LabContext, cluster: str, namespace: str, pod: str, container: str) -> str:
    """LogHandler for the API server: what happened in the pod."""
    state = lab.pods.get((cluster, namespace, pod))
    return "\n".join(state.log) + "\n" if state else ""


def running_status(state: PodState) -> Obj:
    """The status of a wired pod: Running and Ready, with its address."""
    containers = [
        {
            "name": c["name"],
            "image": c.get("image", ""),
            "ready": True,
            "restartCount": 0,
            "state": {"running": {}},
            "imageID": "",
            "containerID": f"lab://{state.netns}",
        }
        for c in state.spec.get("containers", [])
    ]
    return {
        "phase": "Running",
        "podIP": state.ip,
        "podIPs": [{"ip": state.ip}],
        "hostIP": state.node.ip,
        "conditions": [
            {"type": "Ready", "status": "True"},
            {"type": "ContainersReady", "status": "True"},
        ],
        "containerStatuses": containers,
    }


def wire_pod(state: PodState) -> None:
    """A pod namespace with a /32 address, routed by its node (Calico/VPC CNI style)."""
    network.add_netns([state.netns])
    network.veth(state.node.netns, state.dev, state.netns, "eth0")
    network.ip_batch(
        state.netns,
        [
            "link set lo up",
            "link set eth0 up",
            f"addr add {state.ip}/32 dev eth0",
            f"route add {POD_GATEWAY} dev eth0 scope link",
            f"route add default via {POD_GATEWAY} dev eth0",
        ],
    )
    network.ip_batch(
        state.node.netns,
        [
            f"link set {state.dev} up",
            f"route add {state.ip}/32 dev {state.dev}",
        ],
    )
    # answer the pod's ARP for its gateway at once: the kernel delays proxy ARP replies to
    # broadcast requests by up to proxy_delay (0.8 s), which a new pod's first pings lose
    network.sysctl(
        state.node.netns,
        f"net.ipv4.conf.{state.dev}.proxy_arp=1",
        f"net.ipv4.neigh.{state.dev}.proxy_delay=0",
    )


def unwire_pod(state: PodState) -> None:
    """Remove the pod's namespace and its node's route to it."""
    network.run(["ip", "netns", "delete", state.netns], check=False)
    # the veth route left with the namespace; a fault's blackhole route would not
    network.run(["ip", "-n", state.node.netns, "route", "del", f"{state.ip}/32"], check=False)
