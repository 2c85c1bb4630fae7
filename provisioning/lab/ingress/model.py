"""The routing model of the lab's ingress-nginx, built from API objects (pure).

Rules as ingress-nginx v1.15.1 applies them (internal/ingress/controller/controller.go
`getBackendServers`, `createServers`, `mergeAlternativeBackends`; location.go
`updateServerLocations`; internal/k8s/main.go `SetDefaultNGINXPathType`), except where the
Kubernetes API reference says otherwise and the project follows it (noted at the rule):

- an Ingress is this controller's when its `spec.ingressClassName` names an IngressClass whose
  `spec.controller` is k8s.io/ingress-nginx, or when it carries the legacy
  `kubernetes.io/ingress.class: nginx` annotation; any other Ingress is ignored;
- Ingresses are read oldest first (creationTimestamp, then namespace/name): a host+path two
  Ingresses define is served by the older one, the other gets a Warning;
- paths: `Exact` exact; `Prefix` element-wise on `/` with a trailing slash ignored (the API
  reference; ingress-nginx itself keeps a trailing slash); `ImplementationSpecific` as Prefix;
  nginx picks the longest prefix, and an exact location before any prefix;
- hosts: exact, or `*.domain` for exactly one label (template.go `buildServerName`); rules
  without a host go to the default server, which answers 404 for anything unmatched;
- backends: the Service port's ready endpoints from its EndpointSlices; none (or no such
  Service or port) answers 503;
- TLS: a host named in a `tls` entry (or covered by a Secret's SAN) uses that Secret's
  certificate when it is valid for the host, else the default certificate; a host of an
  Ingress with any `tls` entry counts as having TLS (so it redirects);
- canary: a `canary: "true"` Ingress creates no server; each of its host+path pairs joins the
  non-canary location with the identical path and pathType, one canary per location.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from provisioning.lab.ingress.certs import Cert, CertificateError, load_tls_secret
from provisioning.lab.ingress.settings import (
    CLASS_ANNOTATION,
    CONTROLLER_NAME,
    CanarySpec,
    ControllerSettings,
    IngressAnnotations,
    read_annotations,
)

Obj = dict[str, Any]
Key = tuple[str, str]
"""(namespace, name)."""
DEFAULT_SERVER = "_"
_UPSTREAM_CHARS = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class Snapshot:
    """The API objects of one cluster the controller reads."""

    ingresses: tuple[Obj, ...]
    classes: tuple[Obj, ...]
    services: Mapping[Key, Obj]
    slices: Mapping[Key, tuple[Obj, ...]]
    """EndpointSlices by (namespace, their Service's name)."""
    secrets: Mapping[Key, Obj]
    settings: ControllerSettings = field(default_factory=ControllerSettings)
    class_name: str = "nginx"


@dataclass(frozen=True)
class Overrides:
    """What faults and earlier `nginx -t` failures change in the model."""

    weights: Mapping[Key, int] = field(default_factory=dict)
    """Canary Ingress -> the weight served instead of its annotation (`canary-skew`)."""
    redirect_off: bool = False
    """No HTTPS redirect anywhere (`redirect-off`)."""
    certs: Mapping[str, Cert] = field(default_factory=dict)
    """Host -> the certificate served instead (`wrong-cert`, `expired-cert`)."""
    bad_patterns: Mapping[str, str] = field(default_factory=dict)
    """canary-by-header-pattern values nginx cannot compile, with its message: a request
    carrying the header is mainline."""
    excluded: Mapping[Key, str] = field(default_factory=dict)
    """Ingresses left out because nginx rejected their configuration, with its message."""


@dataclass(frozen=True)
class Problem:
    """Something about one Ingress that the controller reports as a Warning Event."""

    ingress: Key
    reason: str
    message: str


@dataclass(frozen=True)
class Backend:
    """Where a location's requests go: an upstream, or 503 with the reason."""

    upstream: str
    """Upstream name; "" when nothing can serve (503)."""
    servers: tuple[str, ...] = ()
    """`ip:port` of the ready endpoints."""
    service: str = ""
    """`namespace/name:port`, for messages."""
    unavailable: str = ""
    """Why it answers 503 (`Service east/echo has no ready endpoints`)."""


@dataclass(frozen=True)
class Canary:
    """A canary joined to a location (balancer.lua `route_to_alternative_balancer`)."""

    backend: Backend
    spec: CanarySpec
    ingress: Key
    pattern_ok: bool = True
    """False when nginx could not compile canary-by-header-pattern (then mainline)."""


@dataclass(frozen=True)
class Location:
    """One nginx location of a server."""

    path: str
    match: str
    """`exact`, `prefix` (element-wise, path normalised without a trailing slash), `root`,
    or `regex` (use-regex)."""
    backend: Backend
    ingress: Key
    redirect: bool
    """Plain HTTP requests are redirected to https."""
    preserve_trailing_slash: bool = False
    canary: Canary | None = None


@dataclass(frozen=True)
class Server:
    """One virtual host (`_` is the default server)."""

    host: str
    locations: tuple[Location, ...]
    cert: Cert | None
    """The certificate for SNI `host`; None: the default certificate."""
    regex: bool = False
    """use-regex on an Ingress of this host: every path is a case-insensitive regex."""


@dataclass(frozen=True)
class IngressConfig:
    """The whole routing model of one cluster."""

    servers: tuple[Server, ...]
    """Named hosts, sorted; the default server is `default`."""
    default: Server
    settings: ControllerSettings
    served: tuple[Key, ...]
    """This controller's Ingresses (their status carries its address)."""
    problems: tuple[Problem, ...]

    def backends(self) -> dict[str, tuple[str, ...]]:
        """Every upstream with servers, by name."""
        found: dict[str, tuple[str, ...]] = {}
        for server in (*self.servers, self.default):
            for loc in server.locations:
                for backend in (loc.backend, loc.canary.backend if loc.canary else None):
                    if backend is not None and backend.upstream:
                        found[backend.upstream] = backend.servers
        return found


def is_ours(ingress: Obj, classes: tuple[Obj, ...], class_name: str) -> bool:
    """Whether this controller serves `ingress` (see the module docstring)."""
    meta, spec = ingress["metadata"], ingress.get("spec") or {}
    wanted = spec.get("ingressClassName")
    if wanted:
        return any(
            c["metadata"]["name"] == wanted
            and (c.get("spec") or {}).get("controller") == CONTROLLER_NAME
            for c in classes
        )
    return (meta.get("annotations") or {}).get(CLASS_ANNOTATION) == class_name


def key_of(obj: Obj) -> Key:
    return (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])


def build(snapshot: Snapshot, overrides: Overrides | None = None) -> IngressConfig:
    """The routing model of `snapshot` (with the faults and rejections of `overrides`)."""
    over = overrides or Overrides()
    ours = sorted(
        (i for i in snapshot.ingresses if is_ours(i, snapshot.classes, snapshot.class_name)),
        key=lambda i: (i["metadata"].get("creationTimestamp", ""), *key_of(i)),
    )
    builder = _Builder(snapshot, over)
    annotations = {key_of(i): read_annotations(_annotations(i)) for i in ours}
    for ingress in ours:
        key = key_of(ingress)
        for warning in annotations[key].warnings:
            builder.problem(key, "InvalidAnnotation", warning)
        if key in over.excluded:
            builder.problem(key, "RejectedConfiguration", over.excluded[key])
        elif annotations[key].canary is None:
            builder.add_main(ingress, annotations[key])
    for ingress in ours:
        key = key_of(ingress)
        canary = annotations[key].canary
        if canary is not None and key not in over.excluded:
            weight = over.weights.get(key)
            spec = canary if weight is None else replace(canary, weight=weight)
            builder.add_canary(ingress, spec)
    return builder.result(tuple(key_of(i) for i in ours))


def _annotations(obj: Obj) -> dict[str, str]:
    return {str(k): str(v) for k, v in (obj["metadata"].get("annotations") or {}).items()}


def normalise(path: str, path_type: str) -> tuple[str, str]:
    """(match, path) of an Ingress path: Prefix and ImplementationSpecific element-wise
    without a trailing slash (`/` stays the root)."""
    if path_type == "Exact":
        return "exact", path
    trimmed = path.rstrip("/")
    return ("prefix", trimmed) if trimmed else ("root", "/")


def upstream_name(namespace: str, service: str, port: str) -> str:
    """ingress-nginx's `<namespace>-<service>-<port>`."""
    return _UPSTREAM_CHARS.sub("_", f"{namespace}-{service}-{port}")


class _Builder:
    """Accumulates servers, locations and problems while Ingresses are read."""

    def __init__(self, snapshot: Snapshot, over: Overrides) -> None:
        self.snapshot = snapshot
        self.over = over
        self.locations: dict[str, dict[tuple[str, str], Location]] = {}
        self.certs: dict[str, Cert | None] = {}
        self.regex_hosts: set[str] = set()
        self.problems: list[Problem] = []
        self._problem_keys: set[Problem] = set()
        self._tls_redirect: set[tuple[str, str, str]] = set()
        """Locations that redirect only if their host turns out to have TLS."""

    def problem(self, ingress: Key, reason: str, message: str) -> None:
        found = Problem(ingress, reason, message)
        if found not in self._problem_keys:
            self._problem_keys.add(found)
            self.problems.append(found)

    # -- main Ingresses --

    def add_main(self, ingress: Obj, notes: IngressAnnotations) -> None:
        key, spec = key_of(ingress), ingress.get("spec") or {}
        hosts: list[str] = []
        for rule in spec.get("rules") or []:
            host = str(rule.get("host") or DEFAULT_SERVER).lower()
            hosts.append(host)
            self.locations.setdefault(host, {})
            if notes.use_regex:
                self.regex_hosts.add(host)
            for item in (rule.get("http") or {}).get("paths") or []:
                match, path = normalise(
                    str(item.get("path") or "/"), str(item.get("pathType") or "Prefix")
                )
                backend = self.backend(key, item.get("backend") or {})
                self.add_location(host, key, match, path, backend, notes)
        default = spec.get("defaultBackend")
        if default:  # catch-all: the root of this Ingress's hosts (or of the default server)
            backend = self.backend(key, default)
            for host in hosts or [DEFAULT_SERVER]:
                self.locations.setdefault(host, {})
                if ("root", "/") not in self.locations[host]:
                    self.add_location(host, key, "root", "/", backend, notes)
        self.add_tls(ingress, [h for h in hosts if h != DEFAULT_SERVER])

    def add_location(
        self,
        host: str,
        key: Key,
        match: str,
        path: str,
        backend: Backend,
        notes: IngressAnnotations,
    ) -> None:
        where = self.locations[host]
        owner = where.get((match, path))
        if owner is not None:
            if owner.ingress != key:
                self.problem(
                    key,
                    "PathConflict",
                    f"host {host} path {path} ({match}) is "
                    f"already served by Ingress {'/'.join(owner.ingress)}: ignored",
                )
            return
        settings = self.snapshot.settings
        force = (
            settings.force_ssl_redirect
            if notes.force_ssl_redirect is None
            else notes.force_ssl_redirect
        )
        ssl = settings.ssl_redirect if notes.ssl_redirect is None else notes.ssl_redirect
        # lua_ingress.lua `redirect_to_https`: force-no > force > ssl-redirect with TLS (the
        # TLS part is decided in `result`, once every Ingress's tls entries are known)
        redirect = "force" if force else ("tls" if ssl else "")
        if notes.force_no_ssl_redirect or self.over.redirect_off:
            redirect = ""
        where[match, path] = Location(
            path, match, backend, key, bool(redirect), notes.preserve_trailing_slash
        )
        if redirect == "tls":
            self._tls_redirect.add((host, match, path))

    def add_tls(self, ingress: Obj, hosts: list[str]) -> None:
        """Certificates for the hosts of `ingress` (extractTLSSecretName, createServers)."""
        key, entries = key_of(ingress), (ingress.get("spec") or {}).get("tls") or []
        if not entries:
            return
        for host in hosts:
            if host in self.certs:
                continue  # the older Ingress's certificate stays
            self.certs[host] = self.cert_for(key, host, entries)

    def cert_for(self, key: Key, host: str, entries: list[Obj]) -> Cert | None:
        override = self.over.certs.get(host)
        if override is not None:
            return override
        named = [e for e in entries if host in [str(h).lower() for h in e.get("hosts") or []]]
        candidates = named or [e for e in entries if e.get("secretName")]
        for entry in candidates:
            name = entry.get("secretName")
            if not name:
                return None  # listed without a secret: the default certificate
            secret = self.snapshot.secrets.get((key[0], str(name)))
            if secret is None:
                if named:
                    self.problem(
                        key,
                        "SecretNotFound",
                        f"Secret {key[0]}/{name} for host "
                        f"{host} not found: serving the default certificate",
                    )
                continue
            try:
                cert = load_tls_secret(secret)
            except CertificateError as err:
                self.problem(
                    key, "InvalidCertificate", f"{err}: serving the default certificate for {host}"
                )
                continue
            if cert.matches(host):
                return cert
            if named:
                self.problem(
                    key,
                    "InvalidCertificate",
                    f"Secret {key[0]}/{name} has no "
                    f"Common Name or Subject Alternative Name for {host}: serving "
                    "the default certificate",
                )
        return None

    # -- backends --

    def backend(self, key: Key, ref: Obj) -> Backend:
        namespace = key[0]
        service = ref.get("service")
        if not service:
            self.problem(
                key,
                "UnsupportedBackend",
                "resource backends are not supported by ingress-nginx: answering 503",
            )
            return Backend("", unavailable="resource backends are not supported")
        name = str(service.get("name", ""))
        port = service.get("port") or {}
        port_ref = str(port.get("number") or port.get("name") or "")
        label = f"{namespace}/{name}:{port_ref}"
        svc = self.snapshot.services.get((namespace, name))
        if svc is None:
            return self._unavailable(key, label, f"Service {namespace}/{name} not found")
        if svc["spec"].get("type") == "ExternalName":
            return self._unavailable(
                key,
                label,
                f"Service {namespace}/{name} is ExternalName: the lab's controller "
                "does not resolve names outside the lab",
            )
        svc_port = next(
            (
                p
                for p in svc["spec"].get("ports") or []
                if str(p.get("port")) == port_ref or p.get("name") == port_ref
            ),
            None,
        )
        if svc_port is None:
            return self._unavailable(
                key, label, f"Service {namespace}/{name} has no port {port_ref}"
            )
        servers = ready_endpoints(
            self.snapshot.slices.get((namespace, name), ()), str(svc_port.get("name") or "")
        )
        upstream = upstream_name(namespace, name, str(svc_port["port"]))
        if not servers:
            why = f"Service {namespace}/{name} has no ready endpoints"
            return Backend("", (), label, why)
        return Backend(upstream, servers, label)

    def _unavailable(self, key: Key, label: str, why: str) -> Backend:
        self.problem(key, "BackendNotFound", f"{why}: answering 503")
        return Backend("", (), label, why)

    # -- canaries --

    def add_canary(self, ingress: Obj, spec: CanarySpec) -> None:
        key = key_of(ingress)
        if spec.weight > spec.total:  # balancer.lua: math.random(total) <= weight, always
            self.problem(
                key,
                "CanaryWeight",
                f"canary-weight {spec.weight} is above "
                f"canary-weight-total {spec.total}: every request goes to the canary",
            )
        for rule in (ingress.get("spec") or {}).get("rules") or []:
            host = str(rule.get("host") or DEFAULT_SERVER).lower()
            for item in (rule.get("http") or {}).get("paths") or []:
                match, path = normalise(
                    str(item.get("path") or "/"), str(item.get("pathType") or "Prefix")
                )
                main = self.locations.get(host, {}).get((match, path))
                if main is None:
                    self.problem(
                        key,
                        "CanaryIgnored",
                        f"no main Ingress serves host {host} "
                        f"path {path} with the same pathType: canary ignored",
                    )
                    continue
                if main.canary is not None and main.canary.ingress != key:
                    self.problem(
                        key,
                        "CanaryIgnored",
                        f"host {host} path {path} already has "
                        f"canary {'/'.join(main.canary.ingress)}: ignored",
                    )
                    continue
                backend = self.backend(key, item.get("backend") or {})
                ok = spec.header_pattern not in self.over.bad_patterns
                if not ok:
                    self.problem(
                        key,
                        "InvalidAnnotation",
                        "canary-by-header-pattern "
                        f"{spec.header_pattern!r} does not compile "
                        f"({self.over.bad_patterns[spec.header_pattern]}): requests "
                        f"carrying {spec.header} go to the main backend",
                    )
                canary = Canary(backend, spec, key, ok)
                self.locations[host][match, path] = replace(main, canary=canary)

    # -- the result --

    def result(self, served: tuple[Key, ...]) -> IngressConfig:
        servers = []
        for host in sorted(h for h in self.locations if h != DEFAULT_SERVER):
            servers.append(self.server(host))
        default = self.server(DEFAULT_SERVER)
        return IngressConfig(
            tuple(servers), default, self.snapshot.settings, served, tuple(self.problems)
        )

    def server(self, host: str) -> Server:
        has_tls = host in self.certs
        locations = []
        for (match, path), loc in sorted(self.locations.get(host, {}).items()):
            if (host, match, path) in self._tls_redirect and not has_tls:
                loc = replace(loc, redirect=False)
            if host in self.regex_hosts:
                loc = replace(loc, match="regex")
            locations.append(loc)
        if host in self.regex_hosts:  # longer paths first, as createServers sorts them
            locations.sort(key=lambda loc: loc.path, reverse=True)
        return Server(host, tuple(locations), self.certs.get(host), host in self.regex_hosts)


def ready_endpoints(slices: tuple[Obj, ...], port_name: str) -> tuple[str, ...]:
    """`ip:port` of every ready endpoint of the port named `port_name` in `slices`."""
    found: list[str] = []
    for eps in slices:
        port = next((p for p in eps.get("ports") or [] if (p.get("name") or "") == port_name), None)
        if port is None or port.get("port") is None:
            continue
        for endpoint in eps.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            found += [f"{address}:{port['port']}" for address in endpoint.get("addresses") or []]
    return tuple(sorted(set(found)))
