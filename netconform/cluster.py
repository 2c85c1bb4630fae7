"""Access to one cluster through the official kubernetes client and a kubeconfig context."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

import urllib3
import websocket
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.stream import stream, ws_client

from netconform import redact
from netconform.command import CommandResult
from netconform.errors import (
    ApiUnreachableError,
    ForbiddenError,
    NetconformError,
    UnauthorizedError,
    UnknownContextError,
)
from netconform.topology import Cluster, Timeouts
from netconform.waits import wait_until

T = TypeVar("T")
#: How long a single API request may take before the API counts as unreachable.
REQUEST_TIMEOUT = 10.0

#: Socket timeout for the exec WebSocket being opened in this thread (None: the client's own).
_WEBSOCKET_TIMEOUT: ContextVar[float | None] = ContextVar("netconform_ws_timeout", default=None)


class _TimedWebSocket(websocket.WebSocket):
    """The client's exec WebSocket, connected with a timeout.

    kubernetes.stream opens it with none at all, so a server that accepts the connection and
    never answers the upgrade would hang the run past the named `exec` timeout.
    """

    def connect(self, url: str, **options: Any) -> None:
        timeout = _WEBSOCKET_TIMEOUT.get()
        if timeout is not None:
            options.setdefault("timeout", timeout)
        super().connect(url, **options)  # type: ignore[no-untyped-call]


ws_client.WebSocket = _TimedWebSocket  # type: ignore[attr-defined]  # what it opens execs with

# kind -> (API class, plural used in method names, namespaced)
_KINDS: dict[str, tuple[type[Any], str, bool]] = {
    "Namespace": (client.CoreV1Api, "namespace", False),
    "Node": (client.CoreV1Api, "node", False),
    "Pod": (client.CoreV1Api, "namespaced_pod", True),
    "Service": (client.CoreV1Api, "namespaced_service", True),
    "ConfigMap": (client.CoreV1Api, "namespaced_config_map", True),
    "Secret": (client.CoreV1Api, "namespaced_secret", True),
    "Endpoints": (client.CoreV1Api, "namespaced_endpoints", True),
    "Deployment": (client.AppsV1Api, "namespaced_deployment", True),
    "ReplicaSet": (client.AppsV1Api, "namespaced_replica_set", True),
    "Ingress": (client.NetworkingV1Api, "namespaced_ingress", True),
    "NetworkPolicy": (client.NetworkingV1Api, "namespaced_network_policy", True),
    "IngressClass": (client.NetworkingV1Api, "ingress_class", False),
    "EndpointSlice": (client.DiscoveryV1Api, "namespaced_endpoint_slice", True),
}
#: Kinds the suite creates and removes by run-id label, in deletion order.
DELETES_AT_ONCE = 8
"""Concurrent deletes of one cluster's leftovers."""
WORKLOAD_KINDS = ("Ingress", "NetworkPolicy", "Service", "Deployment", "Pod", "ConfigMap", "Secret")
#: Namespaces a suite creates (the Calico stars demo's, seed 004); removed by exact name and
#: run-id label, never by a pattern.
SUITE_NAMESPACES = ("stars", "management-ui", "client")


class ClusterClient:
    """One cluster: apply/delete manifests, wait for readiness, exec in pods."""

    def __init__(self, cluster: Cluster, kubeconfig: Path | None, timeouts: Timeouts) -> None:
        self.cluster = cluster
        self.name = str(cluster.name)
        self.timeouts = timeouts
        self.configuration = _load_configuration(cluster.context, kubeconfig)
        self.api = client.ApiClient(self.configuration)

    @property
    def server(self) -> str:
        return str(self.configuration.host)

    def describe(self) -> str:
        """For messages: the server without its path (a lab's path carries its secret)."""
        return f"{self.name} (context {self.cluster.context}, {public_url(self.server)})"

    # -- calls ----------------------------------------------------------------------------

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call the API, turning transport and RBAC failures into one-line errors."""
        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
        try:
            return fn(*args, **kwargs)
        except ApiException as err:
            if err.status == 403:
                raise ForbiddenError(
                    f"{self.describe()}: forbidden to {what}: {_status_message(err)}"
                ) from None
            if err.status == 401:
                raise UnauthorizedError(
                    f"{self.describe()}: the API server refused this kubeconfig's credentials "
                    f"(401 Unauthorized) while trying to {what}"
                ) from None
            raise
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise ApiUnreachableError(
                f"{self.describe()}: API server unreachable while trying to {what}: "
                f"{_root_cause(err)}"
            ) from None

    def version(self, request_timeout: float = REQUEST_TIMEOUT) -> str:
        """The server's gitVersion; ApiUnreachableError when what answers is no API server
        (a wrong port or path: a web server's 404, say)."""
        try:
            info = self.call(
                "read /version",
                client.VersionApi(self.api).get_code,
                _request_timeout=request_timeout,
            )
        except ApiException as err:
            raise ApiUnreachableError(
                f"{self.describe()}: no Kubernetes API server answers there (read /version: "
                f"HTTP {err.status} {err.reason}): is the server URL's port or path wrong?"
            ) from None
        return str(info.git_version)

    def wait_api(self) -> str:
        """The server's version once /version answers (timeout: api_ready).

        No single request outlives the wait: a server that accepts but never answers ends
        it after `api_ready`, not after the per-request timeout.
        """
        last: list[NetconformError] = []
        deadline = time.monotonic() + self.timeouts.api_ready

        def answered() -> str | None:
            left = deadline - time.monotonic()
            try:
                return self.version(request_timeout=max(0.2, min(REQUEST_TIMEOUT, left)))
            except ApiUnreachableError as err:
                last[:] = [err]
                return None

        try:
            return wait_until(
                answered,
                timeout=self.timeouts.api_ready,
                name="api_ready",
                interval=0.2,
                describe=lambda: str(last[0]) if last else "",
            )
        except NetconformError:
            raise (last[0] if last else ApiUnreachableError(self.describe())) from None

    def _method(self, kind: str, verb: str) -> tuple[Callable[..., Any], bool]:
        if kind not in _KINDS:
            raise NetconformError(f"netconform cannot {verb} kind {kind!r}")
        api_cls, plural, namespaced = _KINDS[kind]
        return getattr(api_cls(self.api), f"{verb}_{plural}"), namespaced

    def apply(self, manifest: dict[str, Any]) -> None:
        """Create, or merge-patch when it exists (what `kubectl apply` does, minus pruning)."""
        kind, meta = manifest["kind"], manifest["metadata"]
        namespace = meta.get("namespace", "")
        create, namespaced = self._method(kind, "create")
        args = (namespace, manifest) if namespaced else (manifest,)
        try:
            self.call(f"create {kind} {meta['name']}", create, *args)
        except ApiException as err:
            if err.status != 409:
                raise self._api_error(f"create {kind} {meta['name']}", err) from None
            patch, _ = self._method(kind, "patch")
            key = (meta["name"], namespace) if namespaced else (meta["name"],)
            # a pod's spec cannot change (and a strategic merge of two ports that share a
            # number collapses them): an existing pod only gets the labels
            body = {"metadata": {"labels": meta.get("labels", {})}} if kind == "Pod" else manifest
            self.call(f"patch {kind} {meta['name']}", patch, *key, body)

    def get(self, kind: str, name: str, namespace: str = "") -> Any | None:
        """One object by name (a kubernetes client model); None when there is none."""
        read, namespaced = self._method(kind, "read")
        args = (name, namespace) if namespaced else (name,)
        try:
            return self.call(f"read {kind} {name}", read, *args)
        except ApiException as err:
            if err.status == 404:
                return None
            raise self._api_error(f"read {kind} {name}", err) from None

    def delete(self, kind: str, name: str, namespace: str = "") -> bool:
        """Delete one object; False when it was already gone."""
        delete, namespaced = self._method(kind, "delete")
        args = (name, namespace) if namespaced else (name,)
        try:
            self.call(f"delete {kind} {name}", delete, *args)
        except ApiException as err:
            if err.status == 404:
                return False
            raise self._api_error(f"delete {kind} {name}", err) from None
        return True

    def objects(self, kind: str, namespace: str, selector: str = "") -> list[Any]:
        """Objects of a kind in a namespace ("" = all namespaces) matching a label selector."""
        api_cls, plural, _ = _KINDS[kind]
        api = api_cls(self.api)
        if not _KINDS[kind][2]:
            result = self.call(
                f"list {kind}", getattr(api, f"list_{plural}"), label_selector=selector
            )
        elif namespace:
            fn = getattr(api, f"list_{plural}")
            result = self.call(f"list {kind}", fn, namespace, label_selector=selector)
        else:
            fn = getattr(api, f"list_{plural.removeprefix('namespaced_')}_for_all_namespaces")
            result = self.call(f"list {kind}", fn, label_selector=selector)
        return list(result.items)

    def delete_labelled(self, namespace: str, selector: str) -> int:
        """Remove every workload kind carrying `selector` in `namespace`; count removed. The
        deletes go out a few at a time (each is one API round trip)."""
        found = [
            (kind, obj.metadata.name, obj.metadata.namespace)
            for kind in WORKLOAD_KINDS
            for obj in self.objects(kind, namespace, selector)
        ]
        with ThreadPoolExecutor(max_workers=DELETES_AT_ONCE) as pool:
            return sum(pool.map(lambda item: self.delete(*item), found))

    def delete_suite_namespaces(self, selector: str) -> int:
        """Remove the `SUITE_NAMESPACES` carrying `selector` (their contents go with them)."""
        found = self.objects("Namespace", "", selector)
        names = [n.metadata.name for n in found if n.metadata.name in SUITE_NAMESPACES]
        return sum(self.delete("Namespace", name) for name in names)

    def wait_deleted(self, namespace: str, selector: str) -> None:
        def gone() -> bool:
            return not any(self.objects(k, namespace, selector) for k in ("Pod", "Deployment"))

        wait_until(
            gone,
            timeout=self.timeouts.deletion,
            name="deletion",
            describe=lambda: f"{self.name}/{namespace} objects {selector} remain",
        )

    def wait_pods_ready(
        self, namespace: str, selector: str, count: int, names: Collection[str] = ()
    ) -> list[Any]:
        """The `count` pods matching `selector` (only those of `names`, when given) once all
        run with an IP (timeout: pod_ready)."""
        seen: list[Any] = []

        def ready() -> list[Any] | None:
            found = self.objects("Pod", namespace, selector)
            seen[:] = [p for p in found if not names or p.metadata.name in names]
            running = [p for p in seen if p.status.phase == "Running" and p.status.pod_ip]
            return running if len(running) >= count else None

        def state() -> str:
            phases = ", ".join(f"{p.metadata.name}={p.status.phase}" for p in seen) or "no pods"
            return f"{self.name}/{namespace} {selector}: want {count} running, have {phases}"

        return wait_until(
            ready, timeout=self.timeouts.pod_ready, name="pod_ready", interval=0.1, describe=state
        )

    def _api_error(self, what: str, err: ApiException) -> NetconformError:
        return NetconformError(
            f"{self.describe()}: cannot {what}: HTTP {err.status} {_status_message(err)}"
        )

    # -- exec -----------------------------------------------------------------------------

    def exec(
        self,
        namespace: str,
        pod: str,
        argv: Sequence[str],
        stdin: str | None = None,
        container: str = "",
    ) -> CommandResult:
        """Run argv in a pod; stdout and stderr apart, the real exit code (channel 3)."""
        where = f"{self.name}/{pod}"
        # stream() swaps the ApiClient's transport while it runs: one client per exec keeps
        # concurrent execs and ordinary calls apart.
        api = client.CoreV1Api(client.ApiClient(self.configuration))
        kwargs: dict[str, Any] = {
            "command": list(argv),
            "stdin": stdin is not None,
            "stdout": True,
            "stderr": True,
            "tty": False,
            "_preload_content": False,
        }
        if container:
            kwargs["container"] = container
        # the handshake, like the rest of the exec, is bounded by the named `exec` timeout
        started = time.monotonic()
        token = _WEBSOCKET_TIMEOUT.set(self.timeouts.exec)
        try:
            resp = self.call(
                f"exec in pod {namespace}/{pod}",
                stream,
                api.connect_get_namespaced_pod_exec,
                pod,
                namespace,
                **kwargs,
            )
        except ApiException as err:
            if err.status != 0 or "timed out" not in str(err.reason):
                raise
            return CommandResult(
                tuple(argv),
                124,
                "",
                f"exec timed out after {self.timeouts.exec:g}s (no answer to the exec request)",
                where,
            )
        finally:
            _WEBSOCKET_TIMEOUT.reset(token)
        left = self.timeouts.exec - (time.monotonic() - started)
        return _collect(resp, tuple(argv), where, stdin, max(0.0, left), self.timeouts.exec)


def _collect(
    resp: Any,
    argv: tuple[str, ...],
    where: str,
    stdin: str | None,
    timeout: float,
    named: float,
) -> CommandResult:
    """Read the exec's channels for up to `timeout` seconds (what is left of `named`)."""
    out: list[str] = []
    err: list[str] = []
    try:
        if stdin is not None:
            resp.write_stdin(stdin)
            resp.close_channel(0)
        deadline = time.monotonic() + timeout
        while resp.is_open() and time.monotonic() < deadline:
            resp.update(timeout=min(1.0, max(0.0, deadline - time.monotonic())))
            out.append(resp.read_stdout(timeout=0) if resp.peek_stdout() else "")
            err.append(resp.read_stderr(timeout=0) if resp.peek_stderr() else "")
        if resp.is_open():
            resp.close()
            return CommandResult(
                argv,
                124,
                "".join(out),
                "".join(err) + f"\nexec timed out after {named:g}s",
                where,
            )
        out.append(resp.read_stdout(timeout=0) if resp.peek_stdout() else "")
        err.append(resp.read_stderr(timeout=0) if resp.peek_stderr() else "")
        rc = _returncode(resp)
    finally:
        resp.close()
    return CommandResult(argv, rc, "".join(out), "".join(err), where)


def _returncode(resp: Any) -> int:
    try:
        return int(resp.returncode)
    except (TypeError, KeyError, ValueError, IndexError):
        return 126  # the server closed without an exit status


def _load_configuration(context: str, kubeconfig: Path | None) -> Any:
    path = str(kubeconfig) if kubeconfig is not None else None
    where = path or "the default kubeconfig (KUBECONFIG or ~/.kube/config)"
    try:
        contexts, _ = config.list_kube_config_contexts(config_file=path)  # type: ignore[no-untyped-call]
        names = [c["name"] for c in contexts]
    except (ConfigException, OSError, ValueError, TypeError, KeyError, yaml.YAMLError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UnknownContextError(f"cannot read {where}: {first}") from None
    if context not in names:
        raise UnknownContextError(
            f"unknown context {context!r} in {path or 'kubeconfig'} (known: {', '.join(names)})"
        )
    configuration = client.Configuration()
    try:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=path,
            context=context,
            client_configuration=configuration,
            persist_config=False,
        )
    except (ConfigException, OSError, ValueError, TypeError, KeyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UnknownContextError(f"context {context!r} in {where} is unusable: {first}") from None
    configuration.retries = 0  # an unreachable API should say so at once, not after retries
    _register_secrets(path, configuration)
    return configuration


def _register_secrets(path: str | None, configuration: Any) -> None:
    """Whatever this kubeconfig holds that must never be printed (see netconform.redact)."""
    files = [path] if path else os.environ.get("KUBECONFIG", "").split(os.pathsep)
    for name in [f for f in files if f] or [str(Path.home() / ".kube" / "config")]:
        redact.register_kubeconfig(Path(name))
    keys = dict(configuration.api_key or {})
    redact.register(str(v).removeprefix("Bearer ").strip() for v in keys.values())
    redact.register([configuration.password] if configuration.password else [])
    # the server URL's path: the lab's servers hold their secret there
    path = str(configuration.host or "").partition("://")[2].partition("/")[2]
    redact.register(part for part in path.split("/") if len(part) >= redact.MIN_PATH_SECRET)


def _status_message(err: ApiException) -> str:
    try:
        return str(json.loads(err.body or "{}").get("message") or err.reason)
    except ValueError:
        return str(err.reason)


def public_url(url: str) -> str:
    """`https://host:port` of a server URL, with a `/...` for a path left out: a path can hold
    a secret (the lab's API servers answer only under `/s/<secret>`)."""
    scheme, sep, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme}{sep}{host}" + ("/..." if slash and path else "")


def _root_cause(err: BaseException) -> str:
    reason = getattr(err, "reason", None)
    text = str(reason or err)
    for marker in ("Connection refused", "timed out", "Name or service not known"):
        if marker in text:
            return marker.lower()
    # urllib3 names the URL it failed on: its path may carry a secret
    return re.sub(r"url: \S+", "url: ...", text.splitlines()[0][:200])
