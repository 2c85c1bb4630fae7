"""Faults of the lab's ingress controller, each undone by `heal`:

- `ingress-down CLUSTER`: nginx stops in every controller pod (the pods go not ready);
- `canary-skew CLUSTER/NS/ING WEIGHT`: that canary Ingress is served with another weight
  than its annotation says;
- `redirect-off CLUSTER`: no HTTPS redirect anywhere in the cluster;
- `wrong-cert CLUSTER HOST`: HOST is served another host's certificate;
- `expired-cert CLUSTER HOST`: HOST is served an expired certificate with its names;
- `ingress-stale CLUSTER`: configuration changes stop being applied (what runs keeps running).

Each runs in a fault worker thread and returns once the changed configuration is served.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from netconform.errors import LabError
from provisioning.lab.ingress.certs import Cert, expired_like, for_other_host

if TYPE_CHECKING:
    from provisioning.lab.controllers.base import LabContext
    from provisioning.lab.controllers.ingress_nginx import IngressNginx

Undo = Callable[[], None]


def register_faults(controller: IngressNginx, lab: LabContext) -> None:
    """Contribute the ingress faults to the lab's FaultBook."""
    faults = _Faults(controller)
    lab.faults.update(
        {
            "ingress-down": (1, faults.down),
            "canary-skew": (2, faults.canary_skew),
            "redirect-off": (1, faults.redirect_off),
            "wrong-cert": (2, faults.wrong_cert),
            "expired-cert": (2, faults.expired_cert),
            "ingress-stale": (1, faults.stale),
        }
    )


class _Faults:
    def __init__(self, controller: IngressNginx) -> None:
        self.c = controller

    def _resync(self, cluster: str) -> None:
        self.c.in_loop(self.c.resync(cluster))

    def down(self, cluster: str) -> Undo:
        state = self.c.cluster(cluster)
        if state.down:
            raise LabError(f"the ingress controller of {cluster} is already down")
        self.c.in_loop(self.c.set_down(cluster, True))
        return lambda: self.c.in_loop(self.c.set_down(cluster, False))

    def canary_skew(self, where: str, weight: str) -> Undo:
        parts = where.split("/")
        if len(parts) != 3 or not all(parts):
            raise LabError(f"canary-skew: expected CLUSTER/NAMESPACE/INGRESS, got {where!r}")
        if not weight.lstrip("-").isdigit():
            raise LabError(f"canary-skew: expected a whole-number weight, got {weight!r}")
        cluster, namespace, name = parts
        state = self.c.cluster(cluster)
        config = state.config
        canaries = {
            loc.canary.ingress
            for server in ((*config.servers, config.default) if config else ())
            for loc in server.locations
            if loc.canary is not None
        }
        if (namespace, name) not in canaries:
            raise LabError(f"canary-skew: {cluster} serves no canary Ingress {namespace}/{name}")
        weights = {**state.overrides.weights, (namespace, name): int(weight)}
        state.overrides = replace(state.overrides, weights=weights)
        self._resync(cluster)

        def undo() -> None:
            left = dict(state.overrides.weights)
            left.pop((namespace, name), None)
            state.overrides = replace(state.overrides, weights=left)
            self._resync(cluster)

        return undo

    def redirect_off(self, cluster: str) -> Undo:
        state = self.c.cluster(cluster)
        state.overrides = replace(state.overrides, redirect_off=True)
        self._resync(cluster)

        def undo() -> None:
            state.overrides = replace(state.overrides, redirect_off=False)
            self._resync(cluster)

        return undo

    def _served_cert(self, cluster: str, host: str) -> Cert:
        config = self.c.cluster(cluster).config
        server = next((s for s in config.servers if s.host == host), None) if config else None
        if server is None or server.cert is None:
            raise LabError(
                f"{cluster} serves no TLS certificate for host {host!r} "
                "(an Ingress with a tls entry and a valid Secret for it)"
            )
        return server.cert

    def _serve(self, cluster: str, host: str, cert: Cert) -> Undo:
        state = self.c.cluster(cluster)
        state.overrides = replace(state.overrides, certs={**state.overrides.certs, host: cert})
        self._resync(cluster)

        def undo() -> None:
            left = dict(state.overrides.certs)
            left.pop(host, None)
            state.overrides = replace(state.overrides, certs=left)
            self._resync(cluster)

        return undo

    def wrong_cert(self, cluster: str, host: str) -> Undo:
        own = self._served_cert(cluster, host)
        config = self.c.cluster(cluster).config
        others = (
            [
                s.cert
                for s in config.servers
                if s.cert is not None
                and not s.cert.matches(host)
                and s.cert.cert_pem != own.cert_pem
            ]
            if config
            else []
        )
        return self._serve(cluster, host, others[0] if others else for_other_host(host))

    def expired_cert(self, cluster: str, host: str) -> Undo:
        return self._serve(cluster, host, expired_like(self._served_cert(cluster, host)))

    def stale(self, cluster: str) -> Undo:
        state = self.c.cluster(cluster)
        if state.stale:
            raise LabError(f"the ingress controller of {cluster} is already stale")
        self.c.in_loop(self._wait_synced(cluster))
        state.stale = True

        def undo() -> None:
            state.stale = False
            self._resync(cluster)

        return undo

    async def _wait_synced(self, cluster: str) -> None:
        await self.c.cluster(cluster).synced.wait()
