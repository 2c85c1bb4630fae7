"""The `handshake` probe kind: its argv (one tlsclient process per destination), and its
judgement of real tlsclient output, through the engine (scenario, batch, oracle), against
Debian's nginx on 127.0.0.1 serving the suite's certificates, bad ones and the fake one."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from netconform import certmint
from netconform.command import CommandResult
from netconform.outcomes import RUNNER, Case, Endpoint, Verdict, ingress
from netconform.probes import Probe, Task, kind
from netconform.probes.batch import encode_batch, plan_invocations
from netconform.probes.handshake import expectation
from netconform.result import Result
from netconform.scenario import Scenario, measure
from netconform.tlsoutcomes import CertAspect, VersionAnswer, VersionOffer
from netconform.topology import ProbeSettings
from netconform.vantage import RunnerVantage
from tests.unit import tlsservers

SETTINGS = ProbeSettings(connect_timeout=5)
DAY = dt.timedelta(days=1)
ALL = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")


@dataclass(frozen=True)
class Lab:
    modern: int
    legacy: int
    ca: Path
    cert: Path
    """The certificate served for secure.example (the `cert` param of `served`)."""


def probes(lab: Lab, port: int, *checks: str) -> list[Probe]:
    """The probes of `checks` (default: all), protocol once per version."""
    params = {
        "served": (("cert", str(lab.cert)),),
        "chain": (("ca", str(lab.ca)),),
        "san": (),
        "expiry": (("margin", "14"),),
        "protocol": (),
    }
    found = []
    for check in checks or tuple(params):
        if check == "protocol":
            found += [Probe("handshake", port, (("check", check), ("version", v))) for v in ALL]
        else:
            found.append(Probe("handshake", port, (("check", check), *params[check])))
    return found


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if tlsservers.nginx_binary() is None:
        pytest.skip("nginx is not installed")
    now = dt.datetime.now(dt.UTC)
    ca = certmint.make_ca()
    stranger = certmint.make_ca("someone else's CA")
    sites = {
        "secure.example": certmint.make_host_cert(ca, ["secure.example"]),
        # not after: 8 days and an hour from now
        "soon.example": certmint.make_host_cert(
            ca, ["soon.example"], valid_from=now - DAY, valid_for=9 * DAY + dt.timedelta(hours=1)
        ),
        "old.example": certmint.make_host_cert(
            ca, ["old.example"], valid_from=now - 100 * DAY, valid_for=90 * DAY
        ),
        "stranger.example": certmint.make_host_cert(stranger, ["stranger.example"]),
        "misnamed.example": certmint.make_host_cert(ca, ["shop.example"]),
    }
    fake = certmint.make_fake_certificate()
    files = tmp_path_factory.mktemp("pki")
    ca_file, cert_file = files / "ca.crt", files / "secure.crt"
    ca_file.write_bytes(ca.cert_pem)
    cert_file.write_bytes(sites["secure.example"].cert_pem)
    modern_dir = tmp_path_factory.mktemp("nginx-modern")
    legacy_dir = tmp_path_factory.mktemp("nginx-legacy")
    legacy = ("TLSv1 TLSv1.1 TLSv1.2 TLSv1.3", "DEFAULT:@SECLEVEL=0")
    with (
        tlsservers.nginx_tls(modern_dir, fake, sites) as modern,
        tlsservers.nginx_tls(legacy_dir, fake, sites, *legacy) as old,
    ):
        yield Lab(modern, old, ca_file, cert_file)


def site(host: str) -> Endpoint:
    return ingress("lab", host, "/", "127.0.0.1")


def run(destinations: list[Endpoint], probe_list: list[Probe]) -> Result:
    scenario = Scenario({RUNNER: RunnerVantage()}, destinations, probe_list, settings=SETTINGS)
    return measure(scenario, expectation)


def verdicts(result: Result) -> dict[str, str]:
    """`host check[/version]` -> `expected ... observed ...` for every case."""
    return {
        f"{c.destination.host} {label(c)}": f"expected {c.expected} observed {c.observed}"
        for c in result.cases
    }


def label(case: Case) -> str:
    if isinstance(case.expected, VersionOffer):
        return f"protocol/{case.expected.version}"
    assert isinstance(case.expected, CertAspect)
    return case.expected.aspect


# --- argv ------------------------------------------------------------------------------------


def test_one_process_per_destination_with_every_version_asked() -> None:
    secure, other = site("secure.example"), site("other.example")
    lab = Lab(0, 0, Path("/tmp/ca.crt"), Path("/tmp/secure.crt"))
    tasks = [
        Task(f"t{i}", p, dest)
        for i, (dest, p) in enumerate(
            [(secure, p) for p in probes(lab, 8443)]
            + [(other, Probe("handshake", 0, (("check", "san"),)))]
        )
    ]
    invocations = kind("handshake").invocations(tasks, SETTINGS)
    assert [inv.argv for inv in invocations] == [
        (sys.executable, "-m", "netconform.tlsclient", "127.0.0.1", "8443", "secure.example",
         "--versions", "TLSv1,TLSv1.1,TLSv1.2,TLSv1.3", "--timeout", "5"),
        (sys.executable, "-m", "netconform.tlsclient", "127.0.0.1", "443", "other.example",
         "--timeout", "5"),
    ]  # fmt: skip
    assert [len(inv.tasks) for inv in invocations] == [8, 1]
    assert plan_invocations(tasks, SETTINGS) == invocations
    encode_batch(invocations)  # every word is one the batch program takes


def test_expectations_print_what_they_ask(lab: Lab) -> None:
    dest = site("secure.example")
    printed = [str(expectation(RUNNER, dest, p)) for p in probes(lab, 443)]
    assert printed == [
        "CERT served for secure.example: the given certificate",
        "CERT verified by netconform test CA",
        "CERT names secure.example",
        "CERT valid 14+ more days",
        "TLSv1 REFUSED",
        "TLSv1.1 REFUSED",
        "TLSv1.2 ACCEPTED",
        "TLSv1.3 ACCEPTED",
    ]
    want = Probe(
        "handshake", 443, (("check", "protocol"), ("version", "TLSv1"), ("want", "accepted"))
    )
    assert str(expectation(RUNNER, dest, want)) == "TLSv1 ACCEPTED"


# --- judged from real tlsclient output ---------------------------------------------------------


def test_the_suites_certificate_on_tls_1_2_plus_passes_every_case(lab: Lab) -> None:
    result = run([site("secure.example")], probes(lab, lab.modern))
    assert len(result.cases) == 8
    assert not result.failed, result.report()
    observed = {label(c): str(c.observed) for c in result.cases}
    assert observed["chain"] == "CERT verified by netconform test CA"
    assert observed["served"].startswith("CERT served the expected certificate (sha256 ")
    assert observed["protocol/TLSv1"] == "REFUSED"
    assert observed["protocol/TLSv1.3"] == "ACCEPTED"
    by_label = {label(c): c for c in result.cases}
    refused = by_label["protocol/TLSv1"]
    assert isinstance(refused.observed, VersionAnswer)
    assert refused.observed.how == "alert TLSV1_ALERT_PROTOCOL_VERSION"
    assert by_label["protocol/TLSv1.2"].detail.startswith("TLSv1.2 pinned: TLSv1.2 ")
    assert "CN=secure.example" in by_label["san"].detail
    # one tlsclient process answered them all
    assert len({c.raw.argv for c in result.cases if c.raw is not None}) == 1


def test_a_controller_accepting_tls_1_0_fails_the_check(lab: Lab) -> None:
    result = run([site("secure.example")], probes(lab, lab.legacy, "protocol"))
    cases = verdicts(result)
    assert cases == {
        "secure.example protocol/TLSv1": "expected TLSv1 REFUSED observed ACCEPTED",
        "secure.example protocol/TLSv1.1": "expected TLSv1.1 REFUSED observed ACCEPTED",
        "secure.example protocol/TLSv1.2": "expected TLSv1.2 ACCEPTED observed ACCEPTED",
        "secure.example protocol/TLSv1.3": "expected TLSv1.3 ACCEPTED observed ACCEPTED",
    }
    assert [label(c) for c in result.failed] == ["protocol/TLSv1", "protocol/TLSv1.1"]
    (tls1,) = [c for c in result.failed if label(c) == "protocol/TLSv1"]
    assert tls1.detail.startswith("TLSv1 pinned: TLSv1 ECDHE-")
    assert "handshake expected TLSv1 REFUSED observed ACCEPTED (TLSv1 pinned" in tls1.describe()


def test_every_bad_certificate_fails_with_its_reason(lab: Lab) -> None:
    hosts = [
        "nobody.example",
        "stranger.example",
        "soon.example",
        "old.example",
        "misnamed.example",
    ]
    result = run(
        [site(h) for h in hosts], probes(lab, lab.modern, "served", "chain", "san", "expiry")
    )
    cases = verdicts(result)
    fake = (
        "served the controller's fake certificate (CN=Kubernetes Ingress Controller Fake "
        "Certificate, O=Acme Co): no TLS Secret matched SNI nobody.example"
    )
    assert cases["nobody.example served"] == (
        f"expected CERT served for nobody.example: the given certificate observed CERT fake: {fake}"
    )
    assert cases["nobody.example san"] == (
        "expected CERT names nobody.example observed CERT wrong name: "
        "SAN (ingress.local) does not name nobody.example"
    )
    assert cases["stranger.example chain"] == (
        "expected CERT verified by netconform test CA observed CERT not trusted: "
        'chain does not verify to CA "netconform test CA": '
        "candidates exhausted: all candidates exhausted with no interior errors"
    )
    assert cases["stranger.example served"].startswith(
        "expected CERT served for stranger.example: the given certificate "
        "observed CERT wrong certificate: served sha256 "
    )
    soon = (dt.datetime.now(dt.UTC) + 8 * DAY + dt.timedelta(hours=1)).date()
    assert cases["soon.example expiry"] == (
        "expected CERT valid 14+ more days observed CERT expiring: "
        f"certificate for soon.example expires {soon} (8 days), margin 14 days"
    )
    assert cases["old.example expiry"].startswith(
        "expected CERT valid 14+ more days observed CERT expired: certificate for old.example "
        "expired "
    )
    assert "cert is not valid at validation time" in cases["old.example chain"]
    assert cases["misnamed.example san"].endswith(
        "CERT wrong name: SAN (shop.example) does not name misnamed.example"
    )
    assert "no matching subjectAltName" in cases["misnamed.example chain"]
    passed = sorted(k for k, c in zip(cases, result.cases, strict=True) if c.passed)
    assert passed == [
        "misnamed.example expiry",
        "nobody.example expiry",  # the fake is valid for a year
        "old.example san",
        "soon.example chain",
        "soon.example san",
        "stranger.example expiry",
        "stranger.example san",
    ]


def test_a_ca_given_as_pem_text_and_an_unknown_check(lab: Lab) -> None:
    inline = Probe("handshake", lab.modern, (("check", "chain"), ("ca", lab.ca.read_text())))
    odd = Probe("handshake", lab.modern, (("check", "colour"),))
    result = run([site("secure.example")], [inline, odd])
    chain, colour = result.cases
    assert chain.passed and str(chain.observed) == "CERT verified by netconform test CA"
    assert colour.observed.verdict == Verdict.ERROR and not colour.passed
    assert colour.detail.startswith("unknown handshake check 'colour' (known: served, chain")


def test_no_server_is_a_connection_failure_not_a_tls_verdict(lab: Lab) -> None:
    closed = tlsservers.free_port()
    result = run([site("secure.example")], probes(lab, closed, "chain", "protocol"))
    assert {c.observed.verdict for c in result.cases} == {Verdict.REFUSED}
    assert not any(c.passed for c in result.cases)
    assert result.cases[0].detail == "default handshake: refused: connection refused"
    with tlsservers.silent_listener() as port:
        quick = ProbeSettings(connect_timeout=0.5)
        task = Task(
            "t",
            Probe("handshake", port, (("check", "protocol"), ("version", "TLSv1"))),
            site("a.example"),
        )
        (inv,) = kind("handshake").invocations([task], quick)
        raw = RunnerVantage().run(inv.argv)
    seen = kind("handshake").interpret(inv, raw, quick)["t"]
    assert (seen.outcome.verdict, seen.detail) == (
        Verdict.TIMEOUT,
        "TLSv1 handshake: timeout: handshake timed out",
    )


def test_a_tls_1_0_refusal_counts_only_from_a_server_that_speaks_tls() -> None:
    with tlsservers.closing_server() as port:
        task = Task(
            "t",
            Probe("handshake", port, (("check", "protocol"), ("version", "TLSv1"))),
            site("a.example"),
        )
        (inv,) = kind("handshake").invocations([task], SETTINGS)
        raw = RunnerVantage().run(inv.argv)
    seen = kind("handshake").interpret(inv, raw, SETTINGS)["t"]
    assert seen.outcome.verdict == Verdict.TLS_ERROR
    assert seen.detail.startswith("no TLS handshake completed (default handshake: closed: ")


def test_output_that_is_not_a_document_is_an_error() -> None:
    task = Task("t", Probe("handshake", 443, (("check", "san"),)), site("a.example"))
    handshake = kind("handshake")
    # what the batch program's shell says in a pod without this interpreter
    missing = CommandResult(
        (sys.executable,), 127, "", f"sh: 1: {sys.executable}: not found", "west/probe-0"
    )
    seen = handshake.parse(task, missing, SETTINGS)
    assert (seen.outcome.verdict, seen.detail) == (
        Verdict.ERROR,
        "tlsclient cannot run here (west/probe-0: the runner only)",
    )
    usage = RunnerVantage().run(
        [sys.executable, "-m", "netconform.tlsclient", "127.0.0.1", "x", "a"]
    )
    seen = handshake.parse(task, usage, SETTINGS)
    assert seen.outcome.verdict == Verdict.ERROR
    assert seen.detail.startswith("tlsclient gave no JSON (rc 2): ")


def test_a_tls_1_0_only_server(tmp_path: Path) -> None:
    """The default handshake (TLS 1.2+) fails; TLS 1.0 is accepted, so 1.1's refusal counts."""
    ca = certmint.make_ca()
    sites = {"secure.example": certmint.make_host_cert(ca, ["secure.example"])}
    lab = Lab(0, 0, tmp_path / "ca.crt", tmp_path / "secure.crt")
    lab.ca.write_bytes(ca.cert_pem)
    fake = certmint.make_fake_certificate()
    with tlsservers.nginx_tls(tmp_path, fake, sites, "TLSv1", "DEFAULT:@SECLEVEL=0") as port:
        result = run([site("secure.example")], probes(lab, port, "chain", "protocol"))
    cases = {label(c): c for c in result.cases}
    assert cases["chain"].observed.verdict == Verdict.TLS_ERROR
    assert cases["chain"].detail.startswith("default handshake: alert: ")
    assert verdicts(result)["secure.example protocol/TLSv1"] == (
        "expected TLSv1 REFUSED observed ACCEPTED"
    )
    assert verdicts(result)["secure.example protocol/TLSv1.1"] == (
        "expected TLSv1.1 REFUSED observed REFUSED"
    )
    assert cases["protocol/TLSv1.1"].passed and not cases["protocol/TLSv1.2"].passed
