"""The generated nginx configuration served by a real nginx, in a network namespace of this
test's own (loopback only), with real backends: routing, the canary draw (thousands of
requests at weight 5 and 50 within exact binomial bounds, draws independent), the overrides,
the redirect, HSTS, the fake certificate, and a reload that drops nothing in flight."""

from __future__ import annotations

import asyncio
import http.client
import itertools
import json
import math
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from netconform.waits import wait_until
from provisioning.lab import network
from provisioning.lab.ingress import certs, model, nginxconf
from provisioning.lab.ingress.nginx import PodNginx, check_config
from provisioning.lab.ingress.settings import controller_settings
from provisioning.lab.nsenter import in_netns, listen_tcp
from tests.unit.ingress_objects import (
    NS,
    canary,
    host_cert,
    ingress,
    path,
    rule,
    snapshot,
    tls_secret,
)

NETNS = f"nct{os.getpid() % 100000}-ngx"
BACKENDS = {"echo": 9001, "other": 9002, "slow": 9003}
ALPHA = 1e-4
"""Per statistical assertion: a correct draw fails one of them about once in 10^4 runs."""


class _Backend(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        name = self.server.name  # type: ignore[attr-defined]
        if name == "slow":
            self.server.arrived.set()  # type: ignore[attr-defined]
            time.sleep(1.0)  # the backend's behaviour: an answer that takes a second
        body = json.dumps({"pod": name, "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class Nginx:
    root: Path
    nginx: PodNginx
    fake: certs.Cert
    host: certs.Cert
    loop: asyncio.AbstractEventLoop
    slow_arrived: threading.Event

    def serve(
        self,
        *ingresses: dict[str, Any],
        over: model.Overrides | None = None,
        configmap: dict[str, str] | None = None,
    ) -> model.IngressConfig:
        """Apply a configuration of `ingresses` (tested first), as the controller would."""
        slices = {
            (NS, n): (
                {
                    "ports": [{"name": "http", "port": port}],
                    "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
                },
            )
            for n, port in BACKENDS.items()
        }
        services = {
            (NS, n): {
                "metadata": {"name": n, "namespace": NS},
                "spec": {"ports": [{"name": "http", "port": 80}]},
            }
            for n in [*BACKENDS, "empty"]
        }
        snap = model.Snapshot(
            ingresses,
            ({"metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}},),
            services,
            slices,
            {(NS, "tls"): tls_secret("tls", self.host)},
            controller_settings(configmap),
        )
        config = model.build(snap, over)
        layout = nginxconf.Layout(self.root, self.nginx.generation + 1)
        for cert in [self.fake, *(s.cert for s in config.servers if s.cert)]:
            target = layout.default_cert if cert is self.fake else layout.cert_file(cert.id)
            target.write_bytes(cert.cert_pem + cert.key_pem)
        text = nginxconf.render(config, layout, "test").text
        verdict = self.loop.run_until_complete(check_config(self.root, text))
        assert verdict.ok, verdict.message
        self.loop.run_until_complete(self.nginx.reload(text, layout.generation))
        return config


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    if os.geteuid() != 0:
        pytest.skip("needs root: nginx runs in a network namespace of the test's own")
    network.check_tools(("nginx", "ip", "unshare", "setpriv"))
    network.add_netns([NETNS])
    servers: list[ThreadingHTTPServer] = []
    loop = asyncio.new_event_loop()
    nginx = PodNginx(NETNS, tmp_path_factory.mktemp("nginx"), "test/nginx")
    try:
        network.ip_batch(NETNS, ["link set lo up"])
        for name, port in BACKENDS.items():
            server = ThreadingHTTPServer(("127.0.0.1", port), _Backend, bind_and_activate=False)
            server.socket.close()
            server.socket = listen_tcp(NETNS, port)
            server.socket.setblocking(True)
            server.name = name  # type: ignore[attr-defined]
            server.arrived = threading.Event()  # type: ignore[attr-defined]
            threading.Thread(target=server.serve_forever, daemon=True).start()
            servers.append(server)
        fake, host = certs.fake_certificate(), host_cert("secure.example")
        empty = model.build(model.Snapshot((), (), {}, {}, {}))
        layout = nginxconf.Layout(nginx.root, 1)
        (nginx.root / "certs").mkdir(parents=True, exist_ok=True)
        layout.default_cert.write_bytes(fake.cert_pem + fake.key_pem)
        loop.run_until_complete(nginx.start(nginxconf.render(empty, layout).text, 1))
        yield Nginx(nginx.root, nginx, fake, host, loop, servers[-1].arrived)  # type: ignore[attr-defined]
    finally:
        loop.run_until_complete(nginx.stop())
        loop.close()
        for server in servers:
            server.shutdown()
            server.server_close()
        network.run(["ip", "netns", "delete", NETNS], check=False)


def get(
    host: str, target: str, headers: dict[str, str] | None = None, tls: bool = False
) -> http.client.HTTPResponse:
    """One request on a new connection from inside the namespace (body read); over TLS the
    SNI is the host."""
    with in_netns(NETNS):
        sock = socket.create_connection(("127.0.0.1", 443 if tls else 80), 5)
    if tls:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        sock = context.wrap_socket(sock, server_hostname=host.split(":")[0])
    conn = http.client.HTTPConnection("127.0.0.1", timeout=5)
    conn.sock = sock
    conn.request("GET", target, headers={"Host": host, **(headers or {})})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def backend(host: str, target: str, headers: dict[str, str] | None = None) -> str:
    """Which backend answered (or the status code for a non-200)."""
    with in_netns(NETNS):
        conn = http.client.HTTPConnection("127.0.0.1", 80, timeout=5)
        conn.request("GET", target, headers={"Host": host, **(headers or {})})
        response = conn.getresponse()
        body = response.read()
        conn.close()
    return str(json.loads(body)["pod"]) if response.status == 200 else str(response.status)


def backends_kept_alive(host: str, count: int) -> list[str]:
    """`count` requests on one kept-alive connection (the canary draw is per request, as in
    balancer.lua, so the connection does not matter), the backend of each."""

    def connect() -> http.client.HTTPConnection:
        with in_netns(NETNS):
            conn = http.client.HTTPConnection("127.0.0.1", 80, timeout=5)
            conn.connect()
        return conn

    conn, seen = connect(), []
    for i in range(count):
        conn.request("GET", f"/{i}", headers={"Host": host})
        response = conn.getresponse()
        seen.append(str(json.loads(response.read())["pod"]))
        if response.will_close:  # nginx's keepalive_requests: a new one, in the namespace
            conn.close()
            conn = connect()
    conn.close()
    return seen


def test_routing_exact_prefix_longest_match_hosts(served: Nginx) -> None:
    served.serve(
        ingress(
            "main",
            rule(
                "h.example",
                path("/foo", "echo"),
                path("/foo/bar/", "other"),
                path("/exact", "other", "Exact"),
                path("/same", "other", "Exact"),
                path("/same", "echo"),
                path("/zero", "empty"),
            ),
            rule("*.wild.example", path("/", "echo")),
        )
    )
    expected = {
        ("h.example", "/foo"): "echo",
        ("h.example", "/foo/"): "echo",
        ("h.example", "/foo/x"): "echo",
        ("h.example", "/foo/barx"): "echo",
        ("h.example", "/foobar"): "404",
        ("h.example", "/foo/bar"): "other",
        ("h.example", "/foo/bar/baz"): "other",
        ("h.example", "/exact"): "other",
        ("h.example", "/exact/"): "404",
        ("h.example", "/same"): "other",
        ("h.example", "/same/x"): "echo",
        ("h.example", "/zero"): "503",
        ("h.example", "/foo?q=/foo/bar"): "echo",
        ("a.wild.example", "/"): "echo",
        ("a.b.wild.example", "/"): "404",
        ("wild.example", "/"): "404",
        ("unknown.example", "/foo"): "404",
    }
    seen = {(h, t): backend(h, t) for h, t in expected}
    assert seen == expected


def interval(n: int, p: float, alpha: float) -> tuple[int, int]:
    """The exact two-sided acceptance interval of Binomial(n, p) at level alpha."""
    logs = [
        math.lgamma(n + 1)
        - math.lgamma(k + 1)
        - math.lgamma(n - k + 1)
        + k * math.log(p)
        + (n - k) * math.log1p(-p)
        for k in range(n + 1)
    ]
    pmf = [math.exp(v) for v in logs]
    low, tail = 0, 0.0
    while tail + pmf[low] <= alpha / 2:
        tail += pmf[low]
        low += 1
    high, tail = n, 0.0
    while tail + pmf[high] <= alpha / 2:
        tail += pmf[high]
        high -= 1
    return low, high


def runs_z(draws: list[bool]) -> float:
    """Wald-Wolfowitz runs test statistic: far from 0 when draws are not independent."""
    n1, n2 = sum(draws), len(draws) - sum(draws)
    runs = 1 + sum(a != b for a, b in itertools.pairwise(draws))
    mean = 2 * n1 * n2 / (n1 + n2) + 1
    var = 2 * n1 * n2 * (2 * n1 * n2 - n1 - n2) / ((n1 + n2) ** 2 * (n1 + n2 - 1))
    return (runs - mean) / math.sqrt(var)


@pytest.mark.parametrize(("weight", "requests"), [(5, 4000), (50, 2000)])
def test_canary_draw_is_independent_and_uniform(served: Nginx, weight: int, requests: int) -> None:
    served.serve(
        ingress("main", rule("c.example", path("/", "echo"))),
        canary("c", rule("c.example", path("/", "other")), weight=str(weight)),
    )
    draws = [pod == "other" for pod in backends_kept_alive("c.example", requests)]
    low, high = interval(requests, weight / 100, ALPHA)
    assert low <= sum(draws) <= high, (sum(draws), low, high)
    assert abs(runs_z(draws)) < 3.9, runs_z(draws)  # two-sided, about 1e-4


def test_header_then_cookie_then_weight(served: Nginx) -> None:
    served.serve(
        ingress("main", rule("c.example", path("/", "echo"))),
        canary(
            "c",
            rule("c.example", path("/", "other")),
            weight="50",
            by_header="X-Canary",
            by_cookie="my-canary",
        ),
    )
    for headers, want in (
        ({"X-Canary": "always"}, {"other"}),
        ({"X-Canary": "never"}, {"echo"}),
        ({"Cookie": "a=1; my-canary=always"}, {"other"}),
        ({"Cookie": "my-canary=never"}, {"echo"}),
        ({"X-Canary": "never", "Cookie": "my-canary=always"}, {"echo"}),
        ({"X-Canary": "ALWAYS"}, {"echo", "other"}),  # case-sensitive: falls through to weight
    ):
        seen = {backend("c.example", "/", headers) for _ in range(40)}
        assert seen == want, (headers, seen)


def test_header_value_and_pattern(served: Nginx) -> None:
    served.serve(
        ingress("main", rule("v.example", path("/", "echo")), rule("p.example", path("/", "echo"))),
        canary("v", rule("v.example", path("/", "other")), by_header="FOO", by_header_value="bar"),
        canary(
            "p",
            rule("p.example", path("/", "other")),
            by_header="X-Pat",
            by_header_pattern="^ab+c$",
            weight="100",
        ),
    )
    assert backend("v.example", "/", {"FOO": "bar"}) == "other"
    assert backend("v.example", "/", {"FOO": "never"}) == "echo"  # not special with a value
    assert backend("v.example", "/", {"FOO": "Bar"}) == "echo"
    assert backend("p.example", "/", {"X-Pat": "abbbc"}) == "other"
    assert backend("p.example", "/", {"X-Pat": "abd"}) == "other"  # falls through to weight


def test_a_pattern_nginx_cannot_compile_is_mainline_when_the_header_is_sent(served: Nginx) -> None:
    bad = "a(b"
    main = ingress("main", rule("p.example", path("/", "echo")))
    pat = canary(
        "p",
        rule("p.example", path("/", "other")),
        by_header="X-Pat",
        by_header_pattern=bad,
        weight="100",
    )
    config = model.build(snapshot(main, pat))
    text = nginxconf.render(config, nginxconf.Layout(served.root)).text
    verdict = asyncio.new_event_loop().run_until_complete(check_config(served.root, text))
    assert not verdict.ok and "missing closing parenthesis" in verdict.message
    assert nginxconf.render(config, nginxconf.Layout(served.root)).owner_of(verdict.line) == (
        "pattern",
        bad,
        "east",
        "p",
    )
    served.serve(main, pat, over=model.Overrides(bad_patterns={bad: verdict.message}))
    assert backend("p.example", "/", {"X-Pat": "ab"}) == "echo"
    assert backend("p.example", "/") == "other"


def test_redirect_hsts_and_certificates(served: Nginx) -> None:
    served.serve(
        ingress(
            "tls",
            rule("secure.example", path("/", "echo")),
            tls=[{"hosts": ["secure.example"], "secretName": "tls"}],
        ),
        ingress(
            "keep",
            rule("keep.example", path("/", "echo")),
            tls=[{"hosts": ["keep.example"]}],
            annotations={"nginx.ingress.kubernetes.io/preserve-trailing-slash": "true"},
        ),
    )
    for target, location in (
        ("/a/b/?x=1", "https://secure.example/a/b/?x=1"),
        ("/a/b/", "https://secure.example/a/b"),
        ("/", "https://secure.example"),
    ):
        answer = get("secure.example:80", target)
        assert (answer.status, answer.getheader("Location")) == (308, location)
        assert answer.getheader("Strict-Transport-Security") is None
    kept = get("keep.example", "/a/")
    assert kept.getheader("Location") == "https://keep.example/a/"
    assert get("secure.example", "/.well-known/acme-challenge/token").status == 200
    secure = get("secure.example", "/x", tls=True)
    assert secure.status == 200
    assert secure.getheader("Strict-Transport-Security") == "max-age=31536000; includeSubDomains"
    assert get("nowhere.example", "/", tls=True).getheader("Strict-Transport-Security")
    assert subject_cn("secure.example") == "secure.example"
    assert subject_cn("nowhere.example") == certs.FAKE_CN
    served.serve(
        ingress(
            "tls",
            rule("secure.example", path("/", "echo")),
            tls=[{"hosts": ["secure.example"], "secretName": "tls"}],
        ),
        configmap={"http-redirect-code": "301", "hsts": "false"},
    )
    assert get("secure.example", "/").status == 301
    assert get("secure.example", "/x", tls=True).getheader("Strict-Transport-Security") is None


def subject_cn(host: str) -> str:
    with in_netns(NETNS):
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        raw = socket.create_connection(("127.0.0.1", 443), 5)
    with context.wrap_socket(raw, server_hostname=host) as sock:
        der = sock.getpeercert(binary_form=True)
    assert der is not None
    cert = x509.load_der_x509_certificate(der)
    return str(cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value)


def test_a_reload_drops_no_request_in_flight(served: Nginx) -> None:
    served.serve(ingress("slow", rule("slow.example", path("/", "slow"))))
    answers: list[str] = []
    client = threading.Thread(target=lambda: answers.append(backend("slow.example", "/")))
    client.start()
    # reload while the request is with the backend (which takes a second to answer)
    wait_until(served.slow_arrived.is_set, timeout=5, name="request_in_flight")
    generation = served.nginx.generation
    served.serve(
        ingress("slow", rule("slow.example", path("/", "slow"))),
        ingress("more", rule("more.example", path("/", "echo"))),
    )
    assert served.nginx.generation == generation + 1
    client.join(10)
    assert answers == ["slow"]
    assert backend("more.example", "/") == "echo"
