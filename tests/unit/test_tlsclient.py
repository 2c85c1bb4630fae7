"""netconform.tlsclient, run as the runner runs it (`python -m`), against servers on 127.0.0.1:
Python's `ssl` choosing certificates by SNI, Debian's nginx with TLS 1.2+ only and with
TLS 1.0 enabled, a closed port, a silent listener and a server that hangs up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from netconform import certcheck, certmint, tlsclient
from tests.unit import tlsservers

HOST = "secure.example"
ALL = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
LEGACY_NGINX = ("TLSv1 TLSv1.1 TLSv1.2 TLSv1.3", "DEFAULT:@SECLEVEL=0")

# a system openssl.cnf as Debian 10/11 shipped it: TLS 1.2 at least, security level 2
STRICT_CONF = """\
openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
MinProtocol = TLSv1.2
CipherString = DEFAULT@SECLEVEL=2
"""


@dataclass(frozen=True)
class Pki:
    ca: certmint.Minted
    leaf: certmint.Minted
    fake: certmint.Minted


@pytest.fixture(scope="module")
def pki() -> Pki:
    ca = certmint.make_ca()
    return Pki(ca, certmint.make_host_cert(ca, [HOST]), certmint.make_fake_certificate())


def run_client(
    port: int, sni: str = HOST, versions: tuple[str, ...] = ALL, timeout: float = 5, **env: str
) -> dict[str, Any]:
    argv = [sys.executable, "-m", "netconform.tlsclient", "127.0.0.1", str(port), sni]
    argv += ["--versions", ",".join(versions)] if versions else []
    argv += ["--timeout", f"{timeout:g}"]
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=30, env={**os.environ, **env}, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no warnings, no traceback
    document: dict[str, Any] = json.loads(proc.stdout)
    return document


def served(document: dict[str, Any]) -> x509.Certificate:
    assert document["default"]["result"] == "accepted", document["default"]
    return x509.load_pem_x509_certificate(document["default"]["certificate"].encode())


def results(document: dict[str, Any]) -> dict[str, str]:
    return {v: a["result"] for v, a in document["versions"].items()}


@pytest.fixture(scope="module")
def python_server(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    directory = tmp_path_factory.mktemp("pyssl")
    with tlsservers.python_tls_server(directory, pki.fake, {HOST: pki.leaf}) as port:
        yield port


@pytest.fixture(scope="module")
def nginx_modern(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    if tlsservers.nginx_binary() is None:
        pytest.skip("nginx is not installed")
    directory = tmp_path_factory.mktemp("nginx-modern")
    with tlsservers.nginx_tls(directory, pki.fake, {HOST: pki.leaf}) as port:
        yield port


@pytest.fixture(scope="module")
def nginx_legacy(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    if tlsservers.nginx_binary() is None:
        pytest.skip("nginx is not installed")
    directory = tmp_path_factory.mktemp("nginx-legacy")
    with tlsservers.nginx_tls(directory, pki.fake, {HOST: pki.leaf}, *LEGACY_NGINX) as port:
        yield port


def test_sni_selects_the_certificate_of_a_python_server(python_server: int, pki: Pki) -> None:
    document = run_client(python_server)
    assert certcheck.fingerprint(served(document)) == certcheck.fingerprint(pki.leaf.cert)
    assert document["default"]["version"] == "TLSv1.3"
    assert document["sni"] == HOST and document["port"] == python_server
    other = run_client(python_server, "other.example", ())
    assert certcheck.is_fake(served(other))
    assert other["versions"] == {}


def test_python_server_refuses_tls_1_0_and_1_1_with_an_alert(python_server: int) -> None:
    versions = run_client(python_server)["versions"]
    for old in ("TLSv1", "TLSv1.1"):
        assert versions[old]["result"] == "alert", versions[old]
        assert versions[old]["alert"] == "TLSV1_ALERT_PROTOCOL_VERSION"
        assert versions[old]["phase"] == "handshake"
    for new in ("TLSv1.2", "TLSv1.3"):
        assert (versions[new]["result"], versions[new]["version"]) == ("accepted", new)
        assert versions[new]["cipher"]
        assert "certificate" not in versions[new]  # only the default handshake carries it


def test_nginx_with_tls_1_2_and_1_3_only(nginx_modern: int, pki: Pki) -> None:
    document = run_client(nginx_modern)
    assert certcheck.fingerprint(served(document)) == certcheck.fingerprint(pki.leaf.cert)
    assert results(document) == {
        "TLSv1": "alert",
        "TLSv1.1": "alert",
        "TLSv1.2": "accepted",
        "TLSv1.3": "accepted",
    }
    assert document["versions"]["TLSv1"]["alert"] == "TLSV1_ALERT_PROTOCOL_VERSION"
    # no server_name matches: nginx's default server answers, with the fake certificate
    assert certcheck.is_fake(served(run_client(nginx_modern, "nobody.example", ())))


def test_nginx_with_tls_1_0_enabled_accepts_it(nginx_legacy: int) -> None:
    versions = run_client(nginx_legacy)["versions"]
    assert {v: (a["result"], a.get("version")) for v, a in versions.items()} == {
        v: ("accepted", v) for v in ALL
    }


def test_a_system_min_protocol_is_overridden(nginx_legacy: int, tmp_path: Path) -> None:
    conf = tmp_path / "openssl.cnf"
    conf.write_text(STRICT_CONF)
    # the configuration is in force: openssl itself may no longer offer anything below 1.2
    argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{nginx_legacy}", "-no_tls1_3"]
    argv += ["-no_tls1_2", "-cipher", "DEFAULT:@SECLEVEL=0"]
    env = {**os.environ, "OPENSSL_CONF": str(conf)}
    strict = subprocess.run(argv, input="", capture_output=True, text=True, env=env, timeout=10)
    assert strict.returncode != 0 and "no protocols available" in strict.stderr
    # ... and the tlsclient still offers TLS 1.0 and 1.1
    versions = run_client(nginx_legacy, OPENSSL_CONF=str(conf))["versions"]
    assert versions["TLSv1"]["result"] == "accepted" and versions["TLSv1"]["version"] == "TLSv1"
    assert versions["TLSv1.1"]["result"] == "accepted"


def test_this_machine_can_offer_every_version() -> None:
    assert tlsclient.offer_problems(ALL) == dict.fromkeys(ALL, "")
    assert tlsclient.offer_problems(["SSLv3"]) == {"SSLv3": "unknown TLS version 'SSLv3'"}


def test_a_client_that_cannot_offer_is_not_a_server_refusal(
    nginx_legacy: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Python's and OpenSSL 3's defaults (security level 2): no TLS 1.0 handshake can complete
    monkeypatch.setattr(tlsclient, "PINNED_CIPHERS", "DEFAULT:@SECLEVEL=2")
    problems = tlsclient.offer_problems(ALL)
    assert problems["TLSv1.2"] == problems["TLSv1.3"] == ""
    assert "cannot make a TLSv1 handshake even with itself" in problems["TLSv1"]
    # the server would accept TLS 1.0 (test above): here the client says it could not ask
    document = tlsclient.probe("127.0.0.1", nginx_legacy, HOST, ALL, 5.0)
    assert results(document) == {
        "TLSv1": "cannot-offer",
        "TLSv1.1": "cannot-offer",
        "TLSv1.2": "accepted",
        "TLSv1.3": "accepted",
    }
    assert document["versions"]["TLSv1"]["message"] == problems["TLSv1"]


def test_connection_refused_timeout_and_hang_up_are_named_apart() -> None:
    closed = tlsservers.free_port()
    refused = run_client(closed, versions=("TLSv1.2",))
    assert refused["default"] == {
        "result": "refused",
        "phase": "connect",
        "message": "connection refused",
    }
    assert refused["versions"]["TLSv1.2"]["result"] == "refused"
    with tlsservers.silent_listener() as port:
        silent = run_client(port, versions=(), timeout=0.5)
    assert (silent["default"]["result"], silent["default"]["phase"]) == ("timeout", "handshake")
    with tlsservers.closing_server() as port:
        hung_up = run_client(port, versions=())
    assert hung_up["default"]["result"] == "closed", hung_up["default"]


def test_a_bad_version_is_a_usage_error() -> None:
    argv = [sys.executable, "-m", "netconform.tlsclient", "127.0.0.1", "443", HOST]
    proc = subprocess.run(
        [*argv, "--versions", "TLSv1,SSLv3"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert "unknown version(s) SSLv3" in proc.stderr and "Traceback" not in proc.stderr
