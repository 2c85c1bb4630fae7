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

from pathlib import Path

import pytest

from fixtures.checks import Verify
from fixtures.collection import parametrize_by
from netconform import certmint
from netconform.check import Check, Environment, load_manifests, no_cause
from netconform.checks.tls import (
    ASPECTS,
    INGRESS,
    REDIRECTS,
    SECRET,
    aspect_of,
    expected,
    keys,
    openssl_name,
    runner_probes,
    tls_cause,
)
from netconform.errors import WaitTimeoutError
from netconform.ingress import Route, controller, retarget
from netconform.outcomes import (
    NOT_SUPPORTED,
    RUNNER,
    Case,
    Certificate,
    Endpoint,
    Outcome,
    Verdict,
    ingress,
)
from netconform.probes import Probe
from netconform.scenario import Scenario
from netconform.vantage import RunnerVantage, Vantage

MANIFESTS = load_manifests(Path(__file__).with_name("tls.yaml"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_by(metafunc, "aspect", keys)


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


TLS = Check(
    "tls", __doc__ or "", the_secured_host, slice_by=aspect_of, cause=no_cause, converges=True
)


def test_tls(aspect: Route, verify: Verify) -> None:
    verify(TLS, aspect)
