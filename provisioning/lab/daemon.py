"""The lab daemon: builds the network, serves every cluster's API, applies faults, tears down.

Started by `netconform-lab up` (provisioning.lab.control.up) as a detached process; it writes
`state.json` when every cluster answers and removes everything it made on SIGTERM or
`POST /down`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import signal
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from netconform import redact
from netconform.errors import NetconformError
from netconform.topology import Cluster, ClusterName, Namespace, Region, Topology, dump_topology
from provisioning.lab import layouts, network, ownership
from provisioning.lab.apiserver import ClusterSpec, LabApiServer, NodeSpec, write_kubeconfig
from provisioning.lab.control import TOKEN_HEADER, LabPaths
from provisioning.lab.controllers import CONTROLLERS, LabContext
from provisioning.lab.controllers.firewall import LAB_CLOSED_PORTS, LAB_REQUIRED_PORTS
from provisioning.lab.controllers.kubelet import exec_in_pod, pod_log
from provisioning.lab.controllers.runner import ControllerSet
from provisioning.lab.faults import FaultBook
from provisioning.lab.network import LabPlan
from provisioning.lab.owned_chains import SYNC_PERIOD

log = logging.getLogger("netconform.lab")
OWNER_POLL_INTERVAL = 1.0
STOP_TIMEOUT = 30.0


def cluster_specs(plan: LabPlan, secret: str = "") -> list[ClusterSpec]:
    """One API server per region, its nodes labelled with region and zone."""
    return [
        ClusterSpec(
            name=region.name,
            port=0,
            nodes=tuple(
                NodeSpec(
                    node.name,
                    node.ip,
                    {
                        "kubernetes.io/hostname": node.name,
                        "topology.kubernetes.io/region": region.name,
                        "topology.kubernetes.io/zone": f"{region.name}-{'abcdefgh'[j % 8]}",
                    },
                    pod_cidr=node.pod_cidr,
                )
                for j, node in enumerate(region.nodes)
            ),
            service_cidr=region.service_cidr,
            namespaces=(region.name,),
            secret=secret,
        )
        for region in plan.regions
    ]


def lab_topology(plan: LabPlan, paths: LabPaths) -> Topology:
    """The topology file the suite runs against by default."""
    clusters = tuple(
        Cluster(
            name=ClusterName(r.name),
            context=f"lab-{r.name}",
            region=Region(r.name),
            namespace=Namespace(r.name),
            pod_cidrs=(r.vpc_cidr,),
            service_cidrs=(r.service_cidr,),
            dns_zone=f"{r.name}.svc.cluster.local",
            cloud="lab",
        )
        for r in plan.regions
    )
    return Topology(
        name="lab",
        clusters=clusters,
        kubeconfig=Path(paths.kubeconfig.name),
        runner_netns=plan.world_netns,
        required_ports=LAB_REQUIRED_PORTS,
        closed_ports=LAB_CLOSED_PORTS,
    )


class Daemon:
    """Owns the lab for its lifetime."""

    def __init__(
        self,
        paths: LabPaths,
        prefix: str,
        regions: int,
        owner_pid: int = 0,
        layout: str = "default",
        sync_period: float = SYNC_PERIOD,
        names: tuple[str, ...] = (),
        nodes: int = network.NODES_PER_REGION,
        vpcs: tuple[str, ...] = (),
        services: tuple[str, ...] = (),
    ) -> None:
        self.paths = paths
        self.owner_pid = owner_pid
        # exec in a lab pod runs as root on this host: only holders of the 0600 kubeconfig
        # and state file (which carry this secret) may reach the APIs and the control port
        self.secret = secrets.token_urlsafe(24)
        redact.register([self.secret])  # its log lines and errors never show it
        owner = ownership.owner_of_dir(paths.root)
        self.plan = layouts.plan(prefix, regions, layout, owner, names, nodes, vpcs, services)
        specs = cluster_specs(self.plan, self.secret)
        self.api = LabApiServer(specs, self._exec, self._log, CONTROLLERS)
        self.lab = LabContext(self.plan, self.api, sync_period=sync_period, state_dir=paths.root)
        self.controllers = ControllerSet(CONTROLLERS)
        self.api.subscribe(self.controllers.deliver)
        self.faults = FaultBook(self.plan, self.lab.pods, self.lab)
        self.stopping = asyncio.Event()
        self.control: web.AppRunner | None = None

    async def _exec(self, *args: Any) -> asyncio.subprocess.Process:
        return await exec_in_pod(self.lab, *args)

    async def _log(self, *args: Any) -> str:
        return await pod_log(self.lab, *args)

    async def run(self) -> None:
        started = time.monotonic()
        ownership.claim(self.plan.prefix, self.plan.owner, os.getpid())
        try:
            await asyncio.to_thread(layouts.build, self.plan)
        except BaseException:
            ownership.release(self.plan.prefix, self.plan.owner)
            raise
        log.info("network built in %.2fs", time.monotonic() - started)
        try:
            await self.controllers.start(self.lab)
            ports = await self.api.start()
            control_port = await self._start_control()
            self._write_files(ports, control_port)
            log.info("lab ready in %.2fs: %s", time.monotonic() - started, ports)
            if self.owner_pid:
                asyncio.get_running_loop().create_task(self._watch_owner())
            await self.stopping.wait()
        finally:
            await self.teardown()

    async def _watch_owner(self) -> None:
        """A lab built for one pytest run ends with that run, however it ends (kill -9 too)."""
        while not self.stopping.is_set():
            try:
                os.kill(self.owner_pid, 0)
            except ProcessLookupError:
                log.info("owner process %d is gone: stopping the lab", self.owner_pid)
                self.stopping.set()
                return
            await asyncio.sleep(OWNER_POLL_INTERVAL)

    def _write_files(self, ports: dict[str, int], control_port: int) -> None:
        write_kubeconfig(self.paths.kubeconfig, ports, secret=self.secret)
        topology = dump_topology(lab_topology(self.plan, self.paths))
        self.paths.topology.write_text(yaml.safe_dump(topology, sort_keys=False))
        state = {
            "pid": os.getpid(),
            "prefix": self.plan.prefix,
            "regions": [r.name for r in self.plan.regions],
            "api_ports": ports,
            "control_port": control_port,
            "world_netns": self.plan.world_netns,
            "state_dir": str(self.paths.root.resolve()),
            "token": self.secret,
        }
        tmp = self.paths.state.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(state, indent=2))
        tmp.replace(self.paths.state)  # readers never see half a file

    async def teardown(self) -> None:
        self.paths.state.unlink(missing_ok=True)
        await self.controllers.stop()
        # let pod wiring/unwiring in flight finish, so teardown sees every namespace
        await self.lab.close(STOP_TIMEOUT)
        await self.api.stop()
        if self.control is not None:
            await self.control.cleanup()
        removed = await asyncio.to_thread(network.destroy, self.plan.prefix, self.plan.owner)
        ownership.release(self.plan.prefix, self.plan.owner)
        log.info("removed %d namespaces", len(removed))

    # -- control endpoint ---------------------------------------------------------------

    async def _start_control(self) -> int:
        app = web.Application(middlewares=[self._require_token])
        app.add_routes(
            [
                web.get("/status", self._status),
                web.post("/fault", self._fault),
                web.post("/heal", self._heal),
                web.post("/down", self._down),
                web.get("/netns", self._netns),
            ]
        )
        self.control = web.AppRunner(app, access_log=None)
        await self.control.setup()
        site = web.TCPSite(self.control, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        return int(sockets[0].getsockname()[1])

    @web.middleware
    async def _require_token(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.headers.get(TOKEN_HEADER) != self.secret:
            return web.json_response({"error": "unauthorized: lab token required"}, status=401)
        response: web.StreamResponse = await handler(request)
        return response

    async def _status(self, _request: web.Request) -> web.Response:
        pods = [
            {
                "cluster": p.cluster,
                "namespace": p.namespace,
                "name": p.name,
                "node": p.node.name,
                "ip": p.ip,
                "netns": p.netns,
                "execs": p.execs,
            }
            for p in self.lab.pods.values()
        ]
        return web.json_response(
            {
                "regions": [r.name for r in self.plan.regions],
                "pods": pods,
                "faults": self.faults.active(),
            }
        )

    async def _fault(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            applied = await asyncio.to_thread(self.faults.apply, body["name"], body["args"])
        except NetconformError as err:
            return web.json_response({"error": str(err)}, status=400)
        return web.json_response({"applied": applied})

    async def _heal(self, _request: web.Request) -> web.Response:
        try:
            healed = await asyncio.to_thread(self.faults.heal)
        except NetconformError as err:
            return web.json_response({"error": str(err)}, status=400)
        return web.json_response({"healed": healed})

    async def _down(self, _request: web.Request) -> web.Response:
        self.stopping.set()
        return web.json_response({"stopping": True})

    async def _netns(self, request: web.Request) -> web.Response:
        """The namespace behind a name a person would type: world, a node, a router, a pod."""
        name = request.query.get("name", "")
        try:
            return web.json_response({"netns": self._resolve_netns(name)})
        except NetconformError as err:
            return web.json_response({"error": str(err)}, status=404)

    def _resolve_netns(self, name: str) -> str:
        if name == "world":
            return self.plan.world_netns
        if name == "shared" and self.plan.shared is not None:
            return self.plan.shared.netns
        for region in self.plan.regions:
            if name in (f"{region.name}-router", region.name):
                return region.router_netns
            for node in region.nodes:
                if name == node.name:
                    return node.netns
        return self.lab.pods.by_name(name).netns


def _listed(words: str) -> tuple[str, ...]:
    return tuple(w for w in words.split(",") if w)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="provisioning.lab.daemon")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--regions", type=int, required=True)
    parser.add_argument("--layout", choices=layouts.LAYOUTS, default="default")
    parser.add_argument("--sync-period", type=float, default=SYNC_PERIOD)
    parser.add_argument("--names", default="", help="region names, comma-separated (a build's)")
    parser.add_argument("--nodes", type=int, default=network.NODES_PER_REGION)
    parser.add_argument("--vpcs", default="", help="region VPC ranges, comma-separated")
    parser.add_argument("--services", default="", help="region service ranges, comma-separated")
    parser.add_argument(
        "--owner-pid",
        type=int,
        default=0,
        help="stop when this process is gone (0: run until told to stop)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(redact.RedactingFilter())
    paths = LabPaths(args.state_dir)

    async def run() -> None:
        daemon = Daemon(
            paths,
            args.prefix,
            args.regions,
            args.owner_pid,
            args.layout,
            args.sync_period,
            names=_listed(args.names),
            nodes=args.nodes,
            vpcs=_listed(args.vpcs),
            services=_listed(args.services),
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, daemon.stopping.set)
        await daemon.run()

    try:
        asyncio.run(run())
    except NetconformError as err:
        print(f"netconform-lab daemon: error: {err}", file=sys.stderr)
        return err.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
