"""The ingress controller of every lab cluster: ingress-nginx, as deploy.yaml installs it,
with Debian's nginx doing the serving.

At start each cluster gets namespace `ingress-nginx` with the controller's ConfigMap,
Deployment (pods `ingress-nginx-controller-*`), the LoadBalancer Service
`ingress-nginx-controller` (80 and 443, `externalTrafficPolicy: Local`) and IngressClass
`nginx` (`ingress/ingress-nginx.yaml`); in the overlap layout also
`ingress-nginx-controller-internal`, an internal LoadBalancer as the Helm chart's
`controller.service.internal` makes it (seed 003's gateways behind internal LBs).

Every pod of that Deployment runs one nginx in its own network namespace (`ingress.nginx`).
On any change of an Ingress, IngressClass, Service, EndpointSlice, Secret or the ConfigMap,
the cluster's routing model is rebuilt (`ingress.model`), rendered (`ingress.nginxconf`),
tested with `nginx -t` and, when it differs from what runs, swapped in with a reload in every
controller pod; the controller waits until each pod serves the new generation. When nginx
rejects a line, the Ingress that owns it is left out and named in a Warning Event
(`RejectedConfiguration`), and the rest is applied; what runs keeps running meanwhile.
Each served Ingress then gets the controller Service's address in `status.loadBalancer`
(`--publish-service`), so `kubectl get ing` shows ADDRESS.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import yaml

from netconform.errors import LabError
from provisioning.lab.apiserver.errors import ApiError
from provisioning.lab.apiserver.model import BY_KIND, Event, Obj
from provisioning.lab.controllers.base import Controller, LabContext, PodState
from provisioning.lab.controllers.kubelet import running_status
from provisioning.lab.ingress import model, nginxconf
from provisioning.lab.ingress.certs import Cert, fake_certificate
from provisioning.lab.ingress.nginx import PodNginx, check_config, prepare
from provisioning.lab.ingress.settings import controller_settings

log = logging.getLogger("netconform.lab.ingress")
NAMESPACE = "ingress-nginx"
SERVICE = "ingress-nginx-controller"
INTERNAL_SERVICE = "ingress-nginx-controller-internal"
CONFIGMAP = "ingress-nginx-controller"
IMAGE = "registry.k8s.io/ingress-nginx/controller"
COMPONENT = "ingress-nginx-controller"
MANIFESTS = Path(__file__).resolve().parent.parent / "ingress" / "ingress-nginx.yaml"
MAX_REJECTIONS = 20
"""Ingresses one sync may leave out before it gives up and keeps what runs."""


def is_ingress_pod(spec: Obj) -> bool:
    """Pods of the ingress-nginx controller image run nginx (and no echo listeners)."""
    return any(str(c.get("image", "")).startswith(IMAGE) for c in spec.get("containers", []))


def system_objects(internal: bool) -> list[Obj]:
    """deploy.yaml's objects, plus the internal LoadBalancer where the layout wants one."""
    docs = [d for d in yaml.safe_load_all(MANIFESTS.read_text()) if d]
    if internal:
        svc = copy.deepcopy(next(d for d in docs if d["kind"] == "Service"))
        svc["metadata"]["name"] = INTERNAL_SERVICE
        svc["metadata"]["annotations"] = {"networking.gke.io/load-balancer-type": "Internal"}
        docs.append(svc)
    return docs


@dataclass
class ClusterIngress:
    """The controller's state for one cluster."""

    name: str
    pods: dict[str, PodNginx] = field(default_factory=dict)
    """Controller pods' nginx, by netns."""
    generation: int = 0
    applied: str = ""
    """The configuration running, rendered for the scratch layout at generation 0."""
    config: model.IngressConfig | None = None
    overrides: model.Overrides = field(default_factory=model.Overrides)
    """The faults' part (weights, redirect, certificates)."""
    bad_patterns: dict[str, str] = field(default_factory=dict)
    rejected: dict[model.Key, tuple[str, str]] = field(default_factory=dict)
    """Ingress -> (resourceVersion, nginx's message) of configurations nginx refused."""
    reported: set[tuple[str, str, str, str]] = field(default_factory=set)
    stale: bool = False
    down: bool = False
    dirty: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    synced: asyncio.Event = field(default_factory=asyncio.Event)


class IngressNginx(Controller):
    name: ClassVar[str] = "ingress-nginx"
    watches: ClassVar[frozenset[str]] = frozenset(
        {"Ingress", "IngressClass", "Service", "EndpointSlice", "Secret", "ConfigMap"}
    )

    def __init__(self) -> None:
        self.clusters: dict[str, ClusterIngress] = {}
        self.fake: Cert | None = None
        self.stopping = False
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    async def start(self, lab: LabContext) -> None:
        await super().start(lab)
        from provisioning.lab.ingress.faults import register_faults

        self.loop = asyncio.get_running_loop()
        if lab.state_dir is not None:
            self.root = lab.state_dir / "ingress"
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="netconform-ingress-")
            self.root = Path(self._tmp.name)
        self.root.mkdir(mode=0o700, exist_ok=True)
        self.fake = await asyncio.to_thread(fake_certificate)
        lab.pod_hooks.append(self)
        register_faults(self, lab)
        internal = lab.plan.shared is not None
        for region in lab.plan.regions:
            self.clusters[region.name] = ClusterIngress(region.name)
            store = lab.store(region.name)
            for manifest in system_objects(internal):
                namespace = manifest["metadata"].get("namespace")
                await store.create(manifest["kind"], namespace, manifest)

    async def stop(self) -> None:
        self.stopping = True  # no sync starts any more: its reloads would wait on stopped pods
        for cluster in self.clusters.values():
            for nginx in list(cluster.pods.values()):
                await nginx.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
        else:  # the folder is this controller's own (certificates and keys among it)
            await asyncio.to_thread(shutil.rmtree, self.root, True)

    async def on_event(self, cluster: str, event: Event) -> None:
        if event.kind == "ConfigMap" and event.obj["metadata"].get("namespace") != NAMESPACE:
            return
        self.schedule(cluster)

    def schedule(self, cluster: str) -> None:
        """Rebuild `cluster`'s configuration soon (events that arrive meanwhile coalesce)."""
        state = self.clusters.get(cluster)
        if state is None:
            return
        state.dirty = True
        state.synced.clear()
        if not state.lock.locked():
            self.lab.tasks.spawn(self._sync_loop(state))

    async def _sync_loop(self, state: ClusterIngress) -> None:
        async with state.lock:
            while state.dirty:
                state.dirty = False
                try:
                    await self._sync(state)
                except LabError as err:
                    log.error("%s: ingress sync failed: %s", state.name, err)
            state.synced.set()

    # -- building and applying ------------------------------------------------------------

    def snapshot(self, cluster: str) -> model.Snapshot:
        store = self.lab.store(cluster)
        slices: dict[model.Key, list[Obj]] = {}
        for eps in store.select(BY_KIND["EndpointSlice"], None):
            service = (eps["metadata"].get("labels") or {}).get("kubernetes.io/service-name")
            if service:
                slices.setdefault((eps["metadata"]["namespace"], service), []).append(eps)
        cm = store.lookup(BY_KIND["ConfigMap"], NAMESPACE, CONFIGMAP)
        return model.Snapshot(
            ingresses=tuple(store.select(BY_KIND["Ingress"], None)),
            classes=tuple(store.select(BY_KIND["IngressClass"], None)),
            services={model.key_of(s): s for s in store.select(BY_KIND["Service"], None)},
            slices={k: tuple(v) for k, v in slices.items()},
            secrets={model.key_of(s): s for s in store.select(BY_KIND["Secret"], None)},
            settings=controller_settings((cm or {}).get("data")),
        )

    def build(self, state: ClusterIngress) -> model.IngressConfig:
        """The cluster's model with its faults and the rejections still current."""
        snap = self.snapshot(state.name)
        versions = {
            model.key_of(i): i["metadata"].get("resourceVersion", "") for i in snap.ingresses
        }
        excluded = {k: msg for k, (rv, msg) in state.rejected.items() if versions.get(k) == rv}
        over = replace(state.overrides, bad_patterns=dict(state.bad_patterns), excluded=excluded)
        return model.build(snap, over)

    async def _sync(self, state: ClusterIngress) -> None:
        if state.stale or self.stopping:
            return  # the `ingress-stale` fault: changes are no longer applied
        config = self.build(state)
        scratch = self.root / f"{state.name}-check"
        for _ in range(MAX_REJECTIONS):
            text = self.render(config, scratch, state.name, 0).text
            if text == state.applied:
                break
            verdict = await check_config(scratch, text)
            if verdict.ok:
                await self._apply(state, config)
                state.applied = text
                break
            if not self._reject(state, config, scratch, verdict.line, verdict.message):
                log.error("%s: nginx refuses the configuration: %s", state.name, verdict.message)
                return  # keep what runs
            config = self.build(state)
        state.config = config
        self._report(state, config)
        await self._publish(state, config)

    def render(
        self, config: model.IngressConfig, root: Path, label: str, generation: int
    ) -> nginxconf.Rendered:
        """The configuration for the pod whose files are in `root`, its certificates written."""
        prepare(root)
        assert self.fake is not None
        _write_cert(nginxconf.Layout(root).default_cert, self.fake)
        for server in config.servers:
            if server.cert is not None:
                _write_cert(nginxconf.Layout(root).cert_file(server.cert.id), server.cert)
        return nginxconf.render(config, nginxconf.Layout(root, generation), label)

    def _reject(
        self,
        state: ClusterIngress,
        config: model.IngressConfig,
        scratch: Path,
        line: int,
        message: str,
    ) -> bool:
        """Leave out what owns the line nginx refused; False when nothing can be."""
        owner = self.render(config, scratch, state.name, 0).owner_of(line)
        if owner[0] == "pattern":
            state.bad_patterns[owner[1]] = message
            return True
        if owner[0] != "ingress":
            return False
        key = (owner[1], owner[2])
        ingress = self.lab.store(state.name).lookup(BY_KIND["Ingress"], *key)
        rv = (ingress or {}).get("metadata", {}).get("resourceVersion", "")
        state.rejected[key] = (
            rv,
            f"nginx refused this Ingress's configuration: {message}; "
            "the rest of the cluster's Ingresses are served",
        )
        return True

    async def _apply(self, state: ClusterIngress, config: model.IngressConfig) -> None:
        state.generation += 1
        generation = state.generation
        for netns, nginx in list(state.pods.items()):
            if state.down or not nginx.running:
                continue
            text = self.render(config, nginx.root, nginx.label, generation).text
            try:
                await nginx.reload(text, generation)
            except LabError as err:
                log.error("%s: %s", netns, err)

    def _report(self, state: ClusterIngress, config: model.IngressConfig) -> None:
        store = self.lab.store(state.name)
        for problem in config.problems:
            ingress = store.lookup(BY_KIND["Ingress"], *problem.ingress)
            if ingress is None:
                continue
            rv = ingress["metadata"].get("resourceVersion", "")
            seen = ("/".join(problem.ingress), rv, problem.reason, problem.message)
            if seen not in state.reported:
                state.reported.add(seen)
                self.lab.record_event(
                    state.name,
                    _with_kind(ingress),
                    problem.reason,
                    problem.message,
                    COMPONENT,
                    "Warning",
                )

    async def _publish(self, state: ClusterIngress, config: model.IngressConfig) -> None:
        """`status.loadBalancer` of every served Ingress: the controller Service's address."""
        store = self.lab.store(state.name)
        svc = store.lookup(BY_KIND["Service"], NAMESPACE, SERVICE)
        lb = ((svc or {}).get("status") or {}).get("loadBalancer") or {}
        addresses = [{"ip": i["ip"]} for i in lb.get("ingress") or [] if i.get("ip")]
        if not addresses:
            return  # the Service's address arrives later: its event syncs again
        for key in config.served:
            with contextlib.suppress(ApiError):  # deleted meanwhile
                await store.set_status(
                    "Ingress", key[0], key[1], {"loadBalancer": {"ingress": addresses}}
                )

    # -- controller pods ------------------------------------------------------------------

    async def pod_started(self, state: PodState) -> None:
        if not is_ingress_pod(state.spec):
            return
        cluster = self.clusters[state.cluster]
        root = self.root / state.netns
        nginx = PodNginx(state.netns, root, f"{state.cluster}/{state.name}")
        config = cluster.config or self.build(cluster)
        text = self.render(config, root, nginx.label, cluster.generation).text
        await nginx.start(text, cluster.generation)
        cluster.pods[state.netns] = nginx
        state.log.append(f"nginx serving generation {cluster.generation} on 80 and 443")
        self.schedule(state.cluster)  # what changed while it started

    def pod_stopping(self, state: PodState) -> None:
        cluster = self.clusters.get(state.cluster)
        nginx = cluster.pods.pop(state.netns, None) if cluster else None
        if nginx is not None:
            self.lab.tasks.spawn(self._stop_pod(nginx))

    async def _stop_pod(self, nginx: PodNginx) -> None:
        await nginx.stop()
        await asyncio.to_thread(shutil.rmtree, nginx.root, True)

    # -- used by the faults ---------------------------------------------------------------

    def in_loop(self, coro: Any) -> Any:
        """Run `coro` in the daemon's loop from a fault's worker thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    async def resync(self, cluster: str) -> None:
        """Rebuild and apply now; returns once it is served."""
        state = self.cluster(cluster)
        state.applied = ""  # re-render even when the objects did not change
        self.schedule(cluster)
        await state.synced.wait()

    def cluster(self, name: str) -> ClusterIngress:
        if name not in self.clusters:
            raise LabError(f"no cluster {name!r} in the lab (clusters: {', '.join(self.clusters)})")
        return self.clusters[name]

    async def set_down(self, cluster: str, down: bool) -> None:
        """Stop (or start again) nginx in every controller pod of `cluster`; their pods go
        not ready (CrashLoopBackOff) while stopped, as a crashing controller's would."""
        state = self.cluster(cluster)
        state.down = down
        store = self.lab.store(cluster)
        for netns, nginx in list(state.pods.items()):
            pod = next((p for p in self.lab.pods.values() if p.netns == netns), None)
            if pod is None:
                continue
            if down:
                await nginx.stop()
            else:
                config = state.config or self.build(state)
                text = self.render(config, nginx.root, nginx.label, state.generation).text
                await nginx.start(text, state.generation)
            with contextlib.suppress(ApiError):
                await store.update_pod_status(pod.namespace, pod.name, _status(pod, down))


def _status(pod: PodState, down: bool) -> Obj:
    status = running_status(pod)
    if down:
        status["conditions"] = [
            {"type": "Ready", "status": "False"},
            {"type": "ContainersReady", "status": "False"},
        ]
        for c in status["containerStatuses"]:
            c.update(
                ready=False,
                restartCount=1,
                state={
                    "running": None,
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": "nginx stopped (lab fault ingress-down)",
                    },
                },
            )
    return status


def _with_kind(ingress: Obj) -> Obj:
    return {**ingress, "kind": "Ingress", "apiVersion": "networking.k8s.io/v1"}


def _write_cert(path: Path, cert: Cert) -> None:
    if not path.exists():
        path.write_bytes(cert.cert_pem + cert.key_pem)
        path.chmod(0o600)
