"""The lab API server: one store and one HTTP listener per cluster."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from provisioning.lab.apiserver.http import ClusterApi
from provisioning.lab.apiserver.kubeconfig import write_kubeconfig
from provisioning.lab.apiserver.model import ClusterSpec, ExecHandler, LogHandler
from provisioning.lab.apiserver.store import Store
from provisioning.lab.apiserver.watch import Subscriber

if TYPE_CHECKING:
    from provisioning.lab.controllers.base import ControllerClass


class LabApiServer:
    """One in-memory API server per lab cluster, all in the running event loop."""

    def __init__(
        self,
        clusters: Sequence[ClusterSpec],
        exec_handler: ExecHandler,
        log_handler: LogHandler | None = None,
        controllers: Iterable[ControllerClass] = (),
    ) -> None:
        """`controllers`: the lab's registry; each store runs its own instance of every
        settling controller in it (without, deployments make no pods, services no endpoints).
        The asynchronous ones are the daemon's (they subscribe)."""
        names = [c.name for c in clusters]
        if len(set(names)) != len(names):
            raise ValueError(f"cluster names must be unique: {names}")
        self.specs = {c.name: c for c in clusters}
        self._subscribers: list[Subscriber] = []
        # imported here: the controllers build on the API server's model (no import cycle)
        from provisioning.lab.controllers.base import SettlingController

        settling = [cls for cls in controllers if issubclass(cls, SettlingController)]
        self.stores: dict[str, Store] = {
            c.name: Store(c, self._subscribers, [cls() for cls in settling]) for c in clusters
        }
        self.apis = {n: ClusterApi(s, exec_handler, log_handler) for n, s in self.stores.items()}
        self.ports: dict[str, int] = {}
        self._runners: list[web.AppRunner] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        """Deliver every event of every cluster to `subscriber` (in order per cluster)."""
        self._subscribers.append(subscriber)

    async def start(self) -> dict[str, int]:
        """Bind every listener; returns cluster -> port."""
        for name, api in self.apis.items():
            runner = web.AppRunner(api.application(), access_log=None, shutdown_timeout=1.0)
            await runner.setup()
            self._runners.append(runner)
            site = web.TCPSite(runner, "127.0.0.1", self.specs[name].port)
            await site.start()
            api.port = self.ports[name] = int(runner.addresses[0][1])
            self.stores[name].start()
        return dict(self.ports)

    async def stop(self) -> None:
        """Close the listeners (open exec and watch streams too) and stop event delivery."""
        for store in self.stores.values():
            await store.stop()
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()

    def write_kubeconfig(self, path: Path, context_prefix: str = "lab-") -> Path:
        """A kubeconfig for the started clusters (see `write_kubeconfig`)."""
        viewers = {n: s.viewer_token for n, s in self.specs.items()}
        secret = next((s.secret for s in self.specs.values()), "")
        return write_kubeconfig(path, self.ports, context_prefix, viewers, secret)
