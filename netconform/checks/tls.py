"""The TLS suite's aspects, runner probes, expectations, slices and likely cause
(`suites/tls`)."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509

from netconform.ingress import Controller, Route
from netconform.outcomes import Case, Certificate, Endpoint, Header, HttpStatus, Outcome, Verdict
from netconform.probes import Probe
from netconform.probes.handshake import expectation
from netconform.tlsoutcomes import CertAspect, VersionOffer
from netconform.topology import Topology

SECRET = "netconform-tls"
INGRESS = "netconform-tls"
ASPECTS = ("redirect", "served", "chain", "san", "expiry", "hsts", "protocols")
HSTS = "Strict-Transport-Security"
#: Plain-HTTP requests whose redirect is checked (query kept, one trailing `/` stripped).
REDIRECTS = ("/netconform/tls/page?q=1&r=/x", "/netconform/tls/")
VERSIONS = (("TLSv1", False), ("TLSv1.1", False), ("TLSv1.2", True), ("TLSv1.3", True))


def keys(topology: Topology) -> list[Route]:
    host = topology.ingress.tls_host
    return [Route(str(c), host, aspect) for c in topology.names for aspect in ASPECTS]


def aspect_of(case: Case) -> str:
    """Which aspect a case checks, read from what it expects."""
    expected, dst = case.expected, case.destination
    if dst.path in ASPECTS:  # a not-supported case, made for its aspect
        name = dst.path
    elif isinstance(expected, CertAspect):
        name = expected.aspect
    elif isinstance(expected, VersionOffer):
        name = "protocols"
    elif isinstance(expected, Header):
        name = "hsts"
    elif isinstance(expected, Certificate):
        name = "served"
    else:
        name = "redirect"
    return f"{dst.cluster}/{dst.host}:{name}"


def openssl_name(name: x509.Name) -> str:
    """A name as openssl s_client prints it (`CN = secure.example`)."""
    short = {"commonName": "CN", "organizationName": "O", "countryName": "C"}
    parts = [f"{short.get(a.oid._name, a.oid._name)} = {a.value!s}" for a in name]
    return ", ".join(parts)


def runner_probes(ca: str, cert: str, margin: int) -> list[Probe]:
    shared = (("ca", ca), ("cert", cert), ("margin", str(margin)))
    checks = [
        Probe("handshake", 443, (("check", c), *shared))
        for c in ("served", "chain", "san", "expiry")
    ]
    checks += [
        Probe(
            "handshake",
            443,
            (("check", "protocol"), ("version", v), ("want", "accepted" if ok else "refused")),
        )
        for v, ok in VERSIONS
    ]
    checks += [Probe("https", 443, (("header", HSTS),)), Probe("http", 80, (("header", HSTS),))]
    return checks


def expected(src: Endpoint, dst: Endpoint, probe: Probe, served: Certificate) -> Outcome:
    if probe.kind == "handshake":
        return expectation(src, dst, probe)
    if probe.kind == "tls":
        return served
    if probe.param("header"):
        return Header(Verdict.ALLOW, HSTS, present=probe.kind == "https")
    return HttpStatus(Verdict.ALLOW, 308, redirect_location(dst.host, dst.path))


def redirect_location(host: str, uri: str) -> str:
    """ingress-nginx's Location (lua_ingress.lua `rewrite`): https, the host without its
    port, the request URI with one trailing `/` dropped (preserve-trailing-slash off)."""
    return f"https://{host}{uri[:-1] if uri.endswith('/') else uri}"


SILENT = (Verdict.TIMEOUT, Verdict.REFUSED, Verdict.UNREACHABLE)


def tls_cause(cases: Sequence[Case], controllers: dict[str, Controller]) -> str:
    """What a cluster's failed TLS cases agree on (never more than they show)."""
    hints = []
    for cluster in sorted({c.destination.cluster for c in cases if not c.passed}):
        mine = [c for c in cases if c.destination.cluster == cluster]
        hints += _cluster_cause(cluster, mine, controllers[cluster].address)
    return "; ".join(hints)


def _cluster_cause(cluster: str, mine: list[Case], address: str) -> list[str]:
    failed = [c for c in mine if not c.passed]
    if all(c.observed.verdict in SILENT for c in mine):
        return [f"{cluster}'s ingress controller does not answer at {address}"]
    hints = []
    tls = [c for c in mine if c.protocol in ("handshake", "tls", "https")]
    plain_answers = any(c.protocol == "http" and c.observed.verdict not in SILENT for c in mine)
    if tls and plain_answers and not any(_handshaken(c) for c in tls):  # no certificate seen
        hints.append(
            f"no TLS connection to {cluster}'s ingress controller at {address}:443 completes "
            f"a handshake ({_seen(tls)}) while plain HTTP answers on port 80: its https "
            "listener or the path to port 443, not the certificate"
        )
    served = [
        c for c in failed if isinstance(c.observed, CertAspect) and c.observed.aspect == "served"
    ]
    if served and "fake" in str(served[0].observed):
        hints.append(
            f"{cluster} serves the controller's fake certificate for "
            f"{served[0].destination.host}: the Secret {SECRET} was not used (see "
            "the Ingress's events: missing, invalid, or not for this host)"
        )
    elif served:
        hints.append(
            f"{cluster} serves another certificate for "
            f"{served[0].destination.host} than the Secret {SECRET} holds"
        )
    redirects = [c for c in mine if type(c.expected) is HttpStatus]
    plain = [c for c in redirects if isinstance(c.observed, HttpStatus) and c.observed.code == 200]
    if plain and len(plain) == len(redirects):
        hints.append(
            f"{cluster} serves plain HTTP instead of redirecting it to https "
            "(ssl-redirect or force-ssl-redirect not in effect)"
        )
    return hints


def _handshaken(case: Case) -> bool:
    """The case's TLS connection opened: a certificate, a version answer or an https reply."""
    seen = case.observed
    if case.protocol == "handshake" and isinstance(case.expected, VersionOffer):
        return bool(getattr(seen, "accepted", False))
    return isinstance(seen, (CertAspect, Certificate, HttpStatus)) and seen.verdict == Verdict.ALLOW


def _seen(cases: list[Case]) -> str:
    verdicts = sorted({str(c.observed.verdict.value) for c in cases})
    return "observed " + ", ".join(verdicts)
