"""The lab's kubelet and kube-proxy: Kubernetes objects in, namespaces and iptables out.

It subscribes to the lab API server: a scheduled pod becomes a network namespace wired to its
node with an address from the node's slice of the VPC, and serves an echo on every declared
TCP containerPort; Services and Endpoints become DNAT rules in every node of the cluster,
as kube-proxy's iptables mode does.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import shutil
from dataclasses import dataclass, field
from typing import Any

from netconform.errors import LabError
from provisioning.lab import network
from provisioning.lab.apiserver import ApiError, Event, LabApiServer
from provisioning.lab.network import POD_GATEWAY, LabPlan, NodePlan, RegionPlan
from provisioning.lab.nsenter import listen_tcp

log = logging.getLogger(__name__)
ECHO_READ_TIMEOUT = 2.0
STOP_TIMEOUT = 30.0


@dataclass
class PodState:
    """What the runtime made for one pod, so it can be undone exactly."""

    cluster: str
    namespace: str
    name: str
    node: NodePlan
    netns: str
    dev: str
    ip: str
    servers: list[asyncio.AbstractServer] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    execs: int = 0
    """Exec sessions run in this pod (the suite promises one per source pod per batch)."""
    started: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once wiring finished (or failed): a stop waits for it before unwiring."""


class LabRuntime:
    """Turns pods, services and endpoints of every lab cluster into real network state."""

    def __init__(self, plan: LabPlan, api: LabApiServer) -> None:
        self.plan = plan
        self.api = api
        self.pods: dict[tuple[str, str, str], PodState] = {}
        self.procs: set[asyncio.subprocess.Process] = set()
        self._next_host: dict[str, int] = {}
        self._ips_in_use: set[str] = set()
        self._dev_counter = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._proxy_dirty: set[str] = set()
        self._proxy_lock = asyncio.Lock()

    # -- events ---------------------------------------------------------------------------

    async def on_event(self, cluster: str, event: Event) -> None:
        """API server subscriber; slow work runs in tasks so API calls return at once."""
        if event.kind == "Pod" and event.type == "ADDED" and event.obj["spec"].get("nodeName"):
            self._spawn(self._start_pod(cluster, event.obj))
        elif event.kind == "Pod" and event.type == "DELETED":
            self._spawn(self._stop_pod(cluster, event.obj))
        elif event.kind in ("Service", "Endpoints"):
            self._proxy_dirty.add(cluster)
            self._spawn(self._sync_proxy())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("runtime task failed: %s", task.exception())

    # -- pods -----------------------------------------------------------------------------

    def _region(self, cluster: str) -> RegionPlan:
        return self.plan.region(cluster)

    def _node(self, cluster: str, node_name: str) -> NodePlan:
        for node in self._region(cluster).nodes:
            if node.name == node_name:
                return node
        raise LabError(f"pod scheduled to unknown node {node_name!r} in {cluster}")

    def _allocate_ip(self, node: NodePlan) -> str:
        net = ipaddress.IPv4Network(node.pod_cidr)
        used = self._ips_in_use
        start = self._next_host.get(node.name, 2)
        for offset in range(net.num_addresses - 3):
            host = 2 + (start - 2 + offset) % (net.num_addresses - 3)
            candidate = str(net.network_address + host)
            if candidate not in used:
                self._next_host[node.name] = host + 1
                self._ips_in_use.add(candidate)  # until its pod is fully unwired
                return candidate
        raise LabError(f"node {node.name} has no pod addresses left in {node.pod_cidr}")

    async def _start_pod(self, cluster: str, pod: dict[str, Any]) -> None:
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
            netns=f"{self.plan.prefix}-{cluster}-{meta['namespace']}-{meta['name']}-{uid}",
            dev=f"p{self._dev_counter}",
            ip=self._allocate_ip(node),
        )
        key = (cluster, state.namespace, state.name)
        self.pods[key] = state
        try:
            await asyncio.to_thread(_wire_pod, state)
            ports = _tcp_ports(spec)
            for port in ports:
                sock = listen_tcp(state.netns, port)
                server = await asyncio.start_server(self._echo_handler(state, port), sock=sock)
                state.servers.append(server)
        finally:
            state.started.set()
        if self.pods.get(key) is not state:
            return  # deleted while it was being wired: _stop_pod undoes it
        state.log.append(f"pod {state.name} on {node.name} ip {state.ip} serving tcp {ports}")
        try:
            await self.api.stores[cluster].update_pod_status(
                state.namespace, state.name, _running_status(state, spec)
            )
        except ApiError:
            log.info("pod %s/%s deleted while it was being wired", state.namespace, state.name)

    async def _stop_pod(self, cluster: str, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        state = self.pods.pop((cluster, meta["namespace"], meta["name"]), None)
        if state is None:
            return
        await state.started.wait()  # never unwire half-way through wiring
        for server in state.servers:
            server.close()
        await asyncio.to_thread(_unwire_pod, state)
        self._ips_in_use.discard(state.ip)

    def _echo_handler(self, state: PodState, port: int) -> Any:
        region = self._region(state.cluster).name

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = writer.get_extra_info("peername")
            client = peer[0] if peer else "?"
            try:
                first = await asyncio.wait_for(reader.readline(), ECHO_READ_TIMEOUT)
            except (TimeoutError, ConnectionError):
                first = b""
            body = json.dumps(
                {
                    "pod": state.name,
                    "namespace": state.namespace,
                    "node": state.node.name,
                    "region": region,
                    "cluster": state.cluster,
                    "ip": state.ip,
                    "port": port,
                    "client": client,
                }
            )
            if first.split(b" ")[0] in (b"GET", b"HEAD", b"POST", b"PUT"):
                await _drain_headers(reader)
                head = (
                    f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body) + 1}\r\nConnection: close\r\n\r\n"
                )
                writer.write(head.encode())
            if first:
                writer.write(body.encode() + b"\n")
                state.log.append(f"{client} -> :{port} {first[:60]!r}")
            try:
                await writer.drain()
                writer.close()
                await writer.wait_closed()
            except ConnectionError:
                pass

        return handle

    async def exec_in_pod(
        self, cluster: str, namespace: str, pod: str, container: str, argv: list[str]
    ) -> asyncio.subprocess.Process:
        """ExecHandler for the API server: the host's tools inside the pod's namespace."""
        state = self.pods.get((cluster, namespace, pod))
        if state is None:
            raise LabError(f"pod {namespace}/{pod} has no network namespace yet")
        if not argv or ("/" not in argv[0] and shutil.which(argv[0]) is None):
            raise FileNotFoundError(argv[0] if argv else "")
        state.execs += 1
        proc = await asyncio.create_subprocess_exec(
            "ip",
            "netns",
            "exec",
            state.netns,
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self.procs.add(proc)
        self._spawn(self._reap(proc))
        return proc

    async def _reap(self, proc: asyncio.subprocess.Process) -> None:
        await proc.wait()
        self.procs.discard(proc)

    async def pod_log(self, cluster: str, namespace: str, pod: str, container: str) -> str:
        state = self.pods.get((cluster, namespace, pod))
        return "\n".join(state.log) + "\n" if state else ""

    def pod_by_name(self, name: str) -> PodState:
        """A pod by `cluster/name`, `namespace/name` or a name unique across the lab."""
        matches = [
            p
            for p in self.pods.values()
            if name in (p.name, f"{p.cluster}/{p.name}", f"{p.namespace}/{p.name}")
        ]
        if len(matches) != 1:
            what = "no pod" if not matches else f"{len(matches)} pods"
            raise LabError(f"{what} named {name!r} in the lab (use cluster/pod)")
        return matches[0]

    # -- kube-proxy -----------------------------------------------------------------------

    async def _sync_proxy(self) -> None:
        async with self._proxy_lock:
            while self._proxy_dirty:
                cluster = self._proxy_dirty.pop()
                rules = proxy_rules(
                    self.api.stores[cluster].list("Service"),
                    self.api.stores[cluster].list("Endpoints"),
                )
                for node in self._region(cluster).nodes:
                    await asyncio.to_thread(network.iptables_restore, node.netns, rules)

    async def stop(self) -> None:
        """Close listeners and end exec'd processes (the namespaces go with the network)."""
        for proc in list(self.procs):
            if proc.returncode is None:
                proc.kill()
        for state in self.pods.values():
            for server in state.servers:
                server.close()
        # let pod wiring/unwiring in flight finish, so teardown sees every namespace
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=STOP_TIMEOUT)


def _tcp_ports(spec: dict[str, Any]) -> list[int]:
    ports = []
    for container in spec.get("containers", []):
        for port in container.get("ports", []) or []:
            if port.get("protocol", "TCP") == "TCP":
                ports.append(int(port["containerPort"]))
    return sorted(set(ports))


def _running_status(state: PodState, spec: dict[str, Any]) -> dict[str, Any]:
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
        for c in spec.get("containers", [])
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


def _wire_pod(state: PodState) -> None:
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
    network.sysctl(state.node.netns, f"net.ipv4.conf.{state.dev}.proxy_arp=1")


def _unwire_pod(state: PodState) -> None:
    network.run(["ip", "netns", "delete", state.netns], check=False)
    # the veth route left with the namespace; a fault's blackhole route would not
    network.run(["ip", "-n", state.node.netns, "route", "del", f"{state.ip}/32"], check=False)


async def _drain_headers(reader: asyncio.StreamReader) -> None:
    while True:
        line = await asyncio.wait_for(reader.readline(), ECHO_READ_TIMEOUT)
        if line in (b"\r\n", b"\n", b""):
            return


def proxy_rules(services: list[dict[str, Any]], endpoints: list[dict[str, Any]]) -> str:
    """kube-proxy's iptables mode in miniature: ClusterIP:port -> a random ready endpoint.

    A Service port without endpoints is rejected (filter table), as kube-proxy does.
    """
    by_name = {(e["metadata"]["namespace"], e["metadata"]["name"]): e for e in endpoints}
    chains: list[str] = []
    nat_rules: list[str] = []
    reject_rules: list[str] = []
    for svc in services:
        cluster_ip = svc["spec"].get("clusterIP")
        if not cluster_ip or cluster_ip == "None":
            continue
        eps = by_name.get((svc["metadata"]["namespace"], svc["metadata"]["name"]))
        for port in svc["spec"].get("ports", []):
            proto = port.get("protocol", "TCP").lower()
            match = f"-d {cluster_ip}/32 -p {proto} --dport {port['port']}"
            backends = _backends(eps, port)
            if not backends:
                reject_rules.append(f"-A LAB-SERVICES {match} -j REJECT")
                continue
            svc_chain = f"LAB-SVC-{len(chains)}"
            chains.append(svc_chain)
            nat_rules.append(f"-A LAB-SERVICES {match} -j {svc_chain}")
            for i, (ip, target) in enumerate(backends):
                sep = f"{svc_chain}-{i}"
                chains.append(sep)
                remaining = len(backends) - i
                pick = (
                    f"-m statistic --mode random --probability {1 / remaining:.5f} "
                    if remaining > 1
                    else ""
                )
                nat_rules += [
                    f"-A {svc_chain} {pick}-j {sep}",
                    # hairpin: a pod reaching itself through its Service is masqueraded
                    f"-A {sep} -s {ip}/32 -j MARK --set-xmark 0x4000/0x4000",
                    f"-A {sep} -p {proto} -j DNAT --to-destination {ip}:{target}",
                ]
    nat = [
        "*nat",
        ":PREROUTING ACCEPT [0:0]",
        ":INPUT ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]",
        ":LAB-SERVICES - [0:0]",
        *(f":{c} - [0:0]" for c in chains),
        "-A PREROUTING -j LAB-SERVICES",
        "-A OUTPUT -j LAB-SERVICES",
        "-A POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE",
        *nat_rules,
        "COMMIT",
    ]
    filt = [
        "*filter",
        ":INPUT ACCEPT [0:0]",
        ":FORWARD ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":LAB-SERVICES - [0:0]",
        "-A FORWARD -j LAB-SERVICES",
        "-A OUTPUT -j LAB-SERVICES",
        *reject_rules,
        "COMMIT",
    ]
    return "\n".join(nat + filt) + "\n"


def _backends(eps: dict[str, Any] | None, port: dict[str, Any]) -> list[tuple[str, int]]:
    """(ip, port) of the ready addresses serving one Service port."""
    if not eps:
        return []
    result = []
    for subset in eps.get("subsets") or []:
        ports = subset.get("ports") or []
        named = [p["port"] for p in ports if p.get("name", "") == port.get("name", "")]
        numbers = named or [p["port"] for p in ports]
        if numbers:
            result += [(addr["ip"], int(numbers[0])) for addr in subset.get("addresses") or []]
    return result
