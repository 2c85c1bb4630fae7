"""Cluster DNS: CoreDNS as every cluster runs it, on a server written with dnspython.

Why dnspython and not Debian's dnsmasq: the kubernetes plugin's answers (ClusterIP, headless
endpoints, SRV per named port, pod records, NXDOMAIN vs NODATA) come straight from the API
objects here, with no hosts files to regenerate; stub zones follow CoreDNS's server-block
choice (longest zone suffix wins) with CoreDNS's rcodes (REFUSED for a zone no block serves,
`.` with no upstream in the lab); and the `loop` plugin's behaviour (probe, `[FATAL]`, the pod
in CrashLoopBackOff) is reproduced, where dnsmasq's `--dns-loop-detect` silently disables a
looping server instead. The wire protocol is real: UDP and TCP on port 53 in each pod.

At start every cluster gets what kubeadm/EKS give it in `kube-system`: the `coredns`
ConfigMap (the EKS default Corefile), Deployment `coredns` (2 replicas, `k8s-app=kube-dns`)
and Service `kube-dns` at x.x.0.10 (ports `dns` 53/UDP, `dns-tcp` 53/TCP). A change of the
`coredns` Corefile or of the legacy `kube-dns` ConfigMap's `stubDomains` is applied at once
(well within CoreDNS's reload period); one that does not parse is logged by the DNS pods
(`kubectl logs`) and the last good configuration stays, as the reload plugin keeps it. Both
sources are honoured (as kube-dns reads `stubDomains`); a zone in both: the Corefile's block.
The lab keeps no answer cache: `cache 30` is accepted and answers are always fresh.

Each DNS pod's server is a process of its own (`dns.worker`, as CoreDNS is on its node),
started when the pod starts and stopped by its exact pid when it stops, so a busy daemon does
not delay answers. The controller feeds it what CoreDNS's informers and reload plugin would
give it: the cluster's Services, Endpoints and pod addresses on every change (coalesced per
event-loop turn, sent only when they differ), and the effective server blocks on every reload
or DNS fault. The pod's log lines (reload errors, forward errors, the loop plugin's FATAL)
come back to `kubectl logs`.

Every pod gets its resolv.conf here (`/etc/netns/<netns>/resolv.conf`, which `ip netns exec`
mounts): ClusterFirst -> the kube-dns ClusterIP, the search path and `ndots:5`; `None` ->
its dnsConfig; `Default` -> no nameserver at all (the lab's nodes have no resolver), so a
lookup in a pod is never addressed outside the lab.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import ipaddress
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, ClassVar

from netconform.corefile import (
    DEFAULT_COREFILE,
    Block,
    CorefileError,
    fqdn,
    merge,
    parse_corefile,
    parse_stub_domains,
)
from netconform.errors import LabError
from provisioning.lab.apiserver.errors import ApiError
from provisioning.lab.apiserver.model import BY_KIND, Event, Obj
from provisioning.lab.controllers.base import Controller, LabContext, PodState
from provisioning.lab.controllers.kubelet import restart_container, running_status
from provisioning.lab.dns.process import PodProcess, config_frame, kube_objects, objects_frame
from provisioning.lab.dns.server import ClusterConfig
from provisioning.lab.dns.worker import Snapshot

log = logging.getLogger("netconform.lab.dns")
SYSTEM = "kube-system"
DNS_IMAGE = "registry.k8s.io/coredns/coredns:v1.11.3"
NETNS_ETC = Path("/etc/netns")
FAULT_TIMEOUT = 10.0


def is_dns_pod(spec: Obj) -> bool:
    """Pods whose image is CoreDNS run the lab's DNS server (and no echo listeners)."""
    return any("coredns" in str(c.get("image", "")) for c in spec.get("containers", []))


def kube_dns_ip(service_cidr: str) -> str:
    """x.x.0.10 of the service CIDR, as kubeadm and EKS place kube-dns."""
    return str(ipaddress.ip_network(service_cidr, strict=False).network_address + 10)


class ClusterDns(Controller):
    name: ClassVar[str] = "cluster-dns"
    watches: ClassVar[frozenset[str]] = frozenset({"ConfigMap", "Service", "Endpoints", "Pod"})

    def __init__(self) -> None:
        self.configs: dict[str, ClusterConfig] = {}
        self._good: dict[str, dict[str, tuple[Block, ...]]] = {}
        self._overrides: dict[str, dict[str, Any]] = {}
        self.servers: dict[str, PodProcess] = {}
        self._states: dict[str, PodState] = {}
        self._crashed: dict[str, str] = {}
        """DNS pods (by netns) the loop plugin halted, with the fatal line."""
        self._sent: dict[str, bytes] = {}
        """The last objects frame sent to each cluster's DNS pods."""
        self._pending: set[str] = set()

    async def start(self, lab: LabContext) -> None:
        await super().start(lab)
        self.loop = asyncio.get_running_loop()
        lab.pod_hooks.insert(0, self)  # resolv.conf before any other hook runs
        lab.faults.update(
            {
                "stub-missing": (2, self._fault_stub_missing),
                "stub-self": (1, self._fault_stub_self),
                "dns-down": (1, self._fault_dns_down),
            }
        )
        networks = tuple(
            ipaddress.IPv4Network(c)
            for r in lab.plan.regions
            for c in (r.vpc_cidr, r.service_cidr, r.lb_cidr, r.ilb_cidr)
        )
        for region in lab.plan.regions:
            cluster = region.name
            self._good[cluster] = {"Corefile": (), "stubDomains": ()}
            self._overrides[cluster] = {"dropped": set(), "self": False}
            store = lab.store(cluster)
            self.configs[cluster] = ClusterConfig((), _lister(store), networks)
            for manifest in system_objects(kube_dns_ip(region.service_cidr)):
                await store.create(manifest["kind"], SYSTEM, manifest)
            self.reload(cluster)

    async def on_event(self, cluster: str, event: Event) -> None:
        meta = event.obj["metadata"]
        if event.kind != "ConfigMap":
            if cluster not in self._pending:  # every change of this loop turn in one frame
                self._pending.add(cluster)
                self.loop.call_soon(self._push_objects, cluster)
        elif meta.get("namespace") == SYSTEM and meta["name"] in ("coredns", "kube-dns"):
            self.reload(cluster)

    def _push_objects(self, cluster: str) -> None:
        self._pending.discard(cluster)
        data = objects_frame(kube_objects(self.lab.store(cluster)))
        if data != self._sent.get(cluster):
            self._sent[cluster] = data
            self._send(cluster, data)

    def _send(self, cluster: str, data: bytes) -> None:
        for key, server in self.servers.items():
            if self._states[key].cluster == cluster:
                server.send(data)

    def _snapshot(self, cluster: str) -> Snapshot:
        config = self.configs[cluster]
        return Snapshot(config.blocks, config.lab_networks, config.down, config.generation)

    # -- configuration ------------------------------------------------------------------

    def reload(self, cluster: str) -> None:
        """Re-read both ConfigMaps; a source that does not parse keeps its last good blocks."""
        store = self.lab.store(cluster)
        good = self._good[cluster]
        for source, name, parse in (
            ("Corefile", "coredns", parse_corefile),
            ("stubDomains", "kube-dns", parse_stub_domains),
        ):
            cm = store.get("ConfigMap", SYSTEM, name)
            text = ((cm or {}).get("data") or {}).get(source)
            try:
                good[source] = parse(text) if text is not None else ()
            except CorefileError as err:
                self._log(
                    cluster,
                    f"[ERROR] plugin/reload: ConfigMap {SYSTEM}/{name} {source}: "
                    f"{err}; keeping the last good configuration",
                )
        config = self.configs[cluster]
        config.blocks = self._effective(cluster, merge(good["Corefile"], good["stubDomains"]))
        config.generation += 1
        self._send(cluster, config_frame(self._snapshot(cluster), reload=True))
        for key in list(self.servers):
            if self._states[key].cluster == cluster and self._crashed.pop(key, ""):
                # the kubelet restarted the crashed container: a new log
                restart_container(self._states[key])
                self.lab.tasks.spawn(self._set_status(self._states[key], ""))
        self._log(cluster, f"[INFO] Reloading complete: {len(config.blocks)} server block(s)")

    def _effective(self, cluster: str, blocks: tuple[Block, ...]) -> tuple[Block, ...]:
        """The blocks after the faults of `cluster` (dropped stub zones, stubs to itself)."""
        over = self._overrides[cluster]
        own = kube_dns_ip(self.lab.region(cluster).service_cidr)
        kept = tuple(b for b in blocks if b.zone not in over["dropped"])
        if over["self"]:
            kept = tuple(
                Block(
                    b.zone,
                    b.plugins,
                    (own,),
                    b.kubernetes,
                    b.pods,
                    b.fallthrough,
                    b.cache,
                    b.origin,
                )
                if b.forward and b.zone != "."
                else b
                for b in kept
            )
        return kept

    def _log(self, cluster: str, line: str) -> None:
        log.info("%s: %s", cluster, line)
        for key, state in self._states.items():
            if state.cluster == cluster and key in self.servers:
                state.log.append(line)

    # -- pods ---------------------------------------------------------------------------

    async def pod_started(self, state: PodState) -> None:
        await asyncio.to_thread(write_resolv_conf, state, self._nameserver(state.cluster))
        if not is_dns_pod(state.spec):
            return
        server = PodProcess(
            state.netns, state.ip, state.log.append, lambda line, gen: self._crash(state, line, gen)
        )
        self._states[state.netns] = state
        self.servers[state.netns] = server
        cluster = state.cluster

        def first() -> bytes:  # read when the process exists: later changes follow it
            objects = objects_frame(kube_objects(self.lab.store(cluster)))
            return objects + config_frame(self._snapshot(cluster), reload=False)

        try:
            await server.start(first, self.lab.procs)
        except LabError:
            self.servers.pop(state.netns, None)
            self._states.pop(state.netns, None)
            raise
        state.log.append(
            f"[INFO] plugin/reload: serving {cluster} on {state.ip}:53 (pid {server.pid})"
        )

    def _crash(self, state: PodState, line: str, generation: int) -> None:
        """The loop plugin halted a pod (ignored when a reload came after that config)."""
        if state.netns in self.servers and generation == self.configs[state.cluster].generation:
            self._crashed[state.netns] = line
            self.lab.tasks.spawn(self._set_status(state, line))

    def pod_stopping(self, state: PodState) -> None:
        server = self.servers.pop(state.netns, None)
        self._states.pop(state.netns, None)
        self._crashed.pop(state.netns, None)
        if server is not None:
            server.close()
        remove_resolv_conf(state)

    async def stop(self) -> None:
        servers = list(self.servers.values())
        for server in servers:
            server.close()
        for server in servers:
            await server.wait(FAULT_TIMEOUT)
        for state in self._states.values():
            remove_resolv_conf(state)

    def _nameserver(self, cluster: str) -> str:
        return kube_dns_ip(self.lab.region(cluster).service_cidr)

    async def _set_status(self, state: PodState, crash: str) -> None:
        """CrashLoopBackOff (not ready) after a fatal loop; Running again after a reload."""
        status = running_status(state)
        for container in status["containerStatuses"]:
            container["restartCount"] = 1
            container["state"] = {"running": {}, "waiting": None}
            if crash:
                container.update(
                    ready=False,
                    state={
                        "running": None,
                        "waiting": {"reason": "CrashLoopBackOff", "message": crash},
                    },
                )
        if crash:
            status["conditions"] = [
                {"type": "Ready", "status": "False"},
                {"type": "ContainersReady", "status": "False"},
            ]
        with contextlib.suppress(ApiError):  # deleted meanwhile
            await self.lab.store(state.cluster).update_pod_status(
                state.namespace, state.name, status
            )

    # -- faults (run in a worker thread by the daemon) ----------------------------------

    def _in_loop(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self.loop).result(FAULT_TIMEOUT)

    def _override(self, cluster: str, change: Callable[[dict[str, Any]], None]) -> None:
        if cluster not in self._overrides:
            raise LabError(f"no cluster {cluster!r} in the lab")

        async def apply() -> None:
            change(self._overrides[cluster])
            self.reload(cluster)

        self._in_loop(apply())

    def _fault_stub_missing(self, cluster: str, zone: str) -> Callable[[], None]:
        zone = fqdn(zone)
        if cluster in self.configs and zone not in {b.zone for b in self.configs[cluster].blocks}:
            raise LabError(f"{cluster} has no stub zone {zone} (stub-missing needs one)")
        self._override(cluster, lambda o: o["dropped"].add(zone))
        return lambda: self._override(cluster, lambda o: o["dropped"].discard(zone))

    def _fault_stub_self(self, cluster: str) -> Callable[[], None]:
        if cluster in self.configs and not any(
            b.forward and b.zone != "." for b in self.configs[cluster].blocks
        ):
            raise LabError(f"{cluster} has no stub zones to point at itself")
        self._override(cluster, lambda o: o.update({"self": True}))
        return lambda: self._override(cluster, lambda o: o.update({"self": False}))

    def _fault_dns_down(self, cluster: str) -> Callable[[], None]:
        if cluster not in self.configs:
            raise LabError(f"no cluster {cluster!r} in the lab")
        self._in_loop(self._set_down(cluster, True))
        return lambda: self._in_loop(self._set_down(cluster, False))

    async def _set_down(self, cluster: str, down: bool) -> None:
        self.configs[cluster].down = down
        self._send(cluster, config_frame(self._snapshot(cluster), reload=False))


def _lister(store: Any) -> Callable[[str], list[Obj]]:
    return lambda kind: store.select(BY_KIND[kind], None)


def write_resolv_conf(state: PodState, cluster_dns: str) -> None:
    """The pod's resolv.conf from its dnsPolicy (and dnsConfig)."""
    spec, ns = state.spec, state.namespace
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    extra = spec.get("dnsConfig") or {}
    servers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet"):
        servers = [cluster_dns]
        search = [f"{ns}.svc.cluster.local", "svc.cluster.local", "cluster.local"]
        options = ["ndots:5"]
    servers += [str(s) for s in extra.get("nameservers") or []]
    search += [str(s) for s in extra.get("searches") or []]
    for option in extra.get("options") or []:
        value = option.get("value")
        options.append(f"{option['name']}:{value}" if value else str(option["name"]))
    lines = [f"# dnsPolicy {policy} (netconform lab)"]
    lines += [f"nameserver {s}" for s in servers]
    if search:
        lines.append("search " + " ".join(search))
    if options:
        lines.append("options " + " ".join(options))
    folder = NETNS_ETC / state.netns
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "resolv.conf").write_text("\n".join(lines) + "\n")


def remove_resolv_conf(state: PodState) -> None:
    """Remove the file by its exact name, and the folder when nothing else is in it."""
    folder = NETNS_ETC / state.netns
    (folder / "resolv.conf").unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # absent, or other files (hosts) still there
        folder.rmdir()


def system_objects(cluster_ip: str) -> list[Obj]:
    """kube-system's DNS objects as kubeadm/EKS create them."""
    labels = {"k8s-app": "kube-dns"}
    ports = [
        {"name": "dns", "containerPort": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
    ]
    return copy.deepcopy(
        [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": "coredns",
                    "namespace": SYSTEM,
                    "labels": {"eks.amazonaws.com/component": "coredns"},
                },
                "data": {"Corefile": DEFAULT_COREFILE},
            },
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "coredns", "namespace": SYSTEM, "labels": labels},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "dnsPolicy": "Default",
                            "containers": [
                                {
                                    "name": "coredns",
                                    "image": DNS_IMAGE,
                                    "args": ["-conf", "/etc/coredns/Corefile"],
                                    "ports": ports,
                                }
                            ],
                        },
                    },
                },
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": "kube-dns",
                    "namespace": SYSTEM,
                    "labels": {**labels, "kubernetes.io/name": "CoreDNS"},
                },
                "spec": {
                    "selector": labels,
                    "clusterIP": cluster_ip,
                    "ports": [
                        {"name": "dns", "port": 53, "targetPort": 53, "protocol": "UDP"},
                        {"name": "dns-tcp", "port": 53, "targetPort": 53, "protocol": "TCP"},
                    ],
                },
            },
        ]
    )
