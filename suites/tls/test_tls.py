"""TLS and the HTTPS redirect (seed 004): the suite makes its own CA and a certificate for the
topology's TLS host, a `kubernetes.io/tls` Secret and an Ingress with `force-ssl-redirect`
in every cluster, then checks through the cluster's ingress controller, from the runner with
the standard library's `ssl` and `cryptography`'s verification (netconform.tlsclient,
certcheck): plain HTTP answers 308 with the https Location (path and query kept, a trailing
`/` stripped); https with SNI serves the suite's certificate, not the controller's fake one;
its chain verifies to the suite's CA; its SAN names the host; it stays valid for the margin
(`ingress.tls_expiry_days`, 14); HSTS is sent on https and not on http; TLS 1.0 and 1.1 are
refused, 1.2 and 1.3 accepted. From a probe pod of every region: the redirect, and openssl
s_client sees the same certificate (subject and issuer). One test per aspect and cluster
(`test_tls[east/secure.example:chain]`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from cryptography import x509

from fixtures.checks import Verify
from fixtures.collection import parametrize_by
from netconform import certmint
from netconform.check import Check, Environment, load_manifests, no_cause
from netconform.errors import WaitTimeoutError
from netconform.ingress import Controller, Route, controller, retarget
from netconform.outcomes import (
    NOT_SUPPORTED,
    RUNNER,
    Case,
    Certificate,
    Endpoint,
    Header,
    HttpStatus,
    Outcome,
    Verdict,
    ingress,
)
from netconform.probes import Probe
from netconform.probes.handshake import expectation
from netconform.scenario import Scenario
from netconform.tlsoutcomes import CertAspect, VersionOffer
from netconform.topology import Topology
from netconform.vantage import RunnerVantage, Vantage

MANIFESTS = load_manifests(Path(__file__).with_name("tls.yaml"))
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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_by(metafunc, "aspect", keys)


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


def the_secured_host(env: Environment) -> Scenario:
    """The CA, the Secret and the Ingress everywhere; what to ask of each controller."""
    host, settings = env.topology.ingress.tls_host, env.topology.ingress
    ca = certmint.make_ca()
    leaf = certmint.make_host_cert(ca, [host])
    ca_pem, leaf_pem = ca.cert_pem.decode(), leaf.cert_pem.decode()
    probes = runner_probes(ca_pem, leaf_pem, settings.tls_expiry_days)
    controllers = {c: controller(client, env.topology, c) for c, client in env.clusters.items()}
    destinations: list[Endpoint] = []
    skipped: list[Case] = []
    for cluster, ctl in controllers.items():
        if ctl.problem:
            raise WaitTimeoutError(ctl.problem)
        targets = [ingress(cluster, host, p, ctl.address) for p in REDIRECTS]
        targets += [
            ingress(cluster, host, "/", ctl.address),
            ingress(cluster, host, "/from-pods/", ctl.address),
        ]
        if ctl.unsupported:
            skipped += [
                Case(
                    RUNNER,
                    Endpoint(cluster, host, "", kind="ingress", host=host, path=a),
                    "handshake",
                    443,
                    NOT_SUPPORTED,
                    NOT_SUPPORTED,
                    ctl.unsupported,
                )
                for a in ASPECTS
            ]
            continue
        namespace = env.topology.cluster(cluster).namespace
        env.apply(cluster, certmint.tls_secret(SECRET, namespace, leaf))
        for manifest in MANIFESTS:
            env.apply(cluster, retarget(manifest, env.topology))
        env.service(cluster, "tls-echo", ready=1)
        destinations += targets
    pods = [ps[0] for ps in env.probe_pods().values()]
    vantages: dict[Endpoint, Vantage] = {p: env.vantage(p) for p in pods}
    vantages[RUNNER] = RunnerVantage.of(env.topology)
    served = Certificate(
        Verdict.ALLOW, subject=openssl_name(leaf.cert.subject), issuer=openssl_name(ca.cert.subject)
    )

    def include(src: Endpoint, dst: Endpoint) -> bool:  # pods: their own destination
        return (src.kind == "pod") == (dst.path == "/from-pods/")

    def probes_of(dst: Endpoint) -> list[Probe]:
        if dst.path == "/from-pods/":
            return [Probe("http", 80), Probe("tls", 443)]
        return probes if dst.path == "/" else [Probe("http", 80)]

    def expect(src: Endpoint, dst: Endpoint, probe: Probe) -> Outcome:
        return expected(src, dst, probe, served)

    return Scenario(
        vantages,
        destinations,
        [Probe("http", 80)],
        include,
        settings=env.topology.probe,
        probes_of=probes_of,
        expect=expect,
        context=lambda _s, d: f"Ingress {env.topology.cluster(d.cluster).namespace}/{INGRESS}",
        explain=lambda cases: tls_cause(cases, controllers),
        skipped=tuple(skipped),
    )


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
        failed = [c for c in mine if not c.passed]
        address = controllers[cluster].address
        if all(c.observed.verdict in SILENT for c in mine):
            hints.append(f"{cluster}'s ingress controller does not answer at {address}")
            continue
        served = [
            c
            for c in failed
            if isinstance(c.observed, CertAspect) and c.observed.aspect == "served"
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
        plain = [
            c
            for c in failed
            if isinstance(c.expected, HttpStatus)
            and isinstance(c.observed, HttpStatus)
            and c.observed.code == 200
        ]
        if plain and len(plain) == sum(isinstance(c.expected, HttpStatus) for c in mine):
            hints.append(
                f"{cluster} serves plain HTTP instead of redirecting it to https "
                "(ssl-redirect or force-ssl-redirect not in effect)"
            )
    return "; ".join(hints)


TLS = Check(
    "tls", __doc__ or "", the_secured_host, slice_by=aspect_of, cause=no_cause, converges=True
)


def test_tls(aspect: Route, verify: Verify) -> None:
    verify(TLS, aspect)
