"""TLS handshakes from the runner with `netconform.tlsclient` (the standard library's `ssl`),
judged in the suite's process by `netconform.certcheck` against the suite's own CA.

Runner only: the argv is this interpreter (`sys.executable -m netconform.tlsclient`), which a
probe pod does not have. Every task to one destination (address, port, SNI) is answered by
ONE tlsclient process: one default handshake, plus one pinned to each version asked.

Probe params (`Probe("handshake", 443, params)`), all strings:

- `check`: the aspect a case checks: `served` (not the controller's fake certificate, and
  the `cert` when given), `chain` (verifies to `ca` for the host), `san` (the SAN names the
  host), `expiry` (valid, and `margin` days more), `protocol` (a handshake pinned to
  `version` is accepted or refused, as `want` says).
- `ca`: the CA certificate (chain): a PEM file on the runner, or the PEM itself.
- `cert`: the certificate the server must serve (served): a PEM file or the PEM itself.
- `margin`: days the certificate must stay valid (expiry; default 14).
- `version`: TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3 (protocol).
- `want`: `accepted` or `refused` (protocol; default: refused below TLS 1.2, else accepted).

Ingress destinations give SNI = host and the address to connect to; others are asked by
address (and send no SNI). `expectation` is the oracle for these params.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509

from netconform import certcheck
from netconform.command import CommandResult
from netconform.outcomes import Endpoint, Outcome, Verdict, plain
from netconform.probes.base import (
    Invocation,
    Observation,
    Probe,
    ProbeKind,
    Task,
    last_line,
    register,
)
from netconform.tlsclient import VERSIONS
from netconform.tlsoutcomes import CertAspect, VersionAnswer, VersionOffer
from netconform.topology import ProbeSettings

ASPECTS = ("served", "chain", "san", "expiry", "protocol")
LEGACY = frozenset({"TLSv1", "TLSv1.1"})
"""Versions refused unless `want` says otherwise."""
DEFAULT_PORT = 443

#: tlsclient results that are the server turning a handshake down
_TURNED_DOWN = frozenset({"alert", "closed", "reset", "tls-error"})
#: tlsclient results that say nothing about TLS: the connection itself failed
_CONNECTION = {
    "refused": Verdict.REFUSED,
    "timeout": Verdict.TIMEOUT,
    "unreachable": Verdict.UNREACHABLE,
    "os-error": Verdict.ERROR,
}


def wanted(probe: Probe) -> bool:
    """Whether a `protocol` case wants its version accepted."""
    want = probe.param("want")
    return want == "accepted" if want else probe.param("version") not in LEGACY


def expectation(_src: Endpoint, dst: Endpoint, probe: Probe) -> Outcome:
    """The oracle of handshake cases: what each `check` asks for."""
    check, host = probe.param("check"), dst.host or dst.ip
    if check not in ASPECTS:
        return CertAspect(Verdict.ALLOW, check, True, f"(unknown check {check!r})")
    if check == "protocol":
        return VersionOffer(Verdict.ALLOW, probe.param("version"), wanted(probe))
    if check == "served":
        whose = "the given certificate" if probe.param("cert") else "not the controller's fake"
        text = f"served for {host}: {whose}"
    elif check == "chain":
        text = f"verified by {_ca_name(probe.param('ca'))}"
    elif check == "san":
        text = f"names {host}"
    else:
        text = f"valid {_margin(probe)}+ more days"
    return CertAspect(Verdict.ALLOW, check, True, text)


def _ca_name(source: str) -> str:
    try:
        return certcheck.common_name(load_pem(source).subject)
    except (OSError, ValueError):
        return f"the CA {source[:60]}"


def load_pem(source: str) -> x509.Certificate:
    """A certificate from a PEM file on the runner, or from the PEM text itself."""
    data = (
        source.encode() if source.lstrip().startswith("-----BEGIN") else Path(source).read_bytes()
    )
    return x509.load_pem_x509_certificate(data)


def _margin(probe: Probe) -> int:
    return int(probe.param("margin", str(certcheck.DEFAULT_MARGIN_DAYS)))


def _target(task: Task) -> tuple[str, int, str]:
    dest = task.destination
    return dest.ip, task.probe.port or DEFAULT_PORT, dest.host or dest.ip


@register
class Handshake(ProbeKind):
    name = "handshake"

    def invocations(self, tasks: Sequence[Task], settings: ProbeSettings) -> list[Invocation]:
        groups: dict[tuple[str, int, str], list[Task]] = {}
        for task in tasks:
            groups.setdefault(_target(task), []).append(task)
        invocations = []
        for (address, port, sni), group in groups.items():
            asked = {
                t.probe.param("version") for t in group if t.probe.param("check") == "protocol"
            }
            versions = [v for v in VERSIONS if v in asked]  # unknown ones: an ERROR each
            argv = [sys.executable, "-m", "netconform.tlsclient", address, str(port), sni]
            if versions:
                argv += ["--versions", ",".join(versions)]
            argv += ["--timeout", f"{settings.connect_timeout:g}"]
            invocations.append(Invocation(tuple(argv), tuple(group)))
        return invocations

    def interpret(
        self, invocation: Invocation, raw: CommandResult, settings: ProbeSettings
    ) -> dict[str, Observation]:
        try:
            document = json.loads(raw.stdout)
        except ValueError:
            document = None
        if not isinstance(document, dict) or "error" in document or "default" not in document:
            detail = _no_document(raw, document)
            return {t.id: Observation(plain(Verdict.ERROR), detail, raw) for t in invocation.tasks}
        return {t.id: judge(t, document, raw) for t in invocation.tasks}

    def argv(self, task: Task, settings: ProbeSettings) -> list[str]:
        (invocation,) = self.invocations([task], settings)
        return list(invocation.argv)

    def parse(self, task: Task, raw: CommandResult, settings: ProbeSettings) -> Observation:
        return self.interpret(Invocation(raw.argv, (task,)), raw, settings)[task.id]


def _no_document(raw: CommandResult, document: object) -> str:
    if raw.rc == 127:
        return f"tlsclient cannot run here ({raw.where or 'this vantage'}: the runner only)"
    if isinstance(document, dict) and "error" in document:
        return f"tlsclient failed: {document['error']}"
    return f"tlsclient gave no JSON (rc {raw.rc}): {last_line(raw)}"


def judge(task: Task, document: dict[str, Any], raw: CommandResult) -> Observation:
    """One task's observation from the tlsclient document."""
    check = task.probe.param("check")
    if check == "protocol":
        return _judge_version(task, document, raw)
    if check not in ASPECTS:
        detail = f"unknown handshake check {check!r} (known: {', '.join(ASPECTS)})"
        return Observation(plain(Verdict.ERROR), detail, raw)
    default: dict[str, Any] = document["default"]
    if default.get("result") != "accepted":
        return _failed_handshake("default handshake", default, raw)
    try:
        leaf = x509.load_pem_x509_certificate(str(default.get("certificate", "")).encode())
        at = dt.datetime.fromisoformat(str(document["time"]))
        outcome = aspect(task, leaf, at)
    except (OSError, ValueError, KeyError) as exc:
        return Observation(plain(Verdict.ERROR), f"{check}: {exc}", raw)
    fp = certcheck.fingerprint(leaf)[:23]
    detail = (
        f"{default.get('version')} {default.get('cipher')}, "
        f"{certcheck.subject_text(leaf)}, sha256 {fp}"
    )
    return Observation(outcome, detail, raw)


def aspect(task: Task, leaf: x509.Certificate, at: dt.datetime) -> CertAspect:
    """The served certificate `leaf`, judged for the task's `check` at time `at`."""
    probe, check = task.probe, task.probe.param("check")
    host = task.destination.host or task.destination.ip
    finding: certcheck.Finding
    if check == "served":
        expected = load_pem(probe.param("cert")) if probe.param("cert") else None
        finding = certcheck.check_served(leaf, host, expected)
        label = "fake" if certcheck.is_fake(leaf) else "wrong certificate"
    elif check == "chain":
        if not probe.param("ca"):
            raise ValueError("the chain check needs a `ca` param (a PEM file or text)")
        finding = certcheck.verify_chain(leaf, load_pem(probe.param("ca")), host, at)
        label = "not trusted"
    elif check == "san":
        finding, label = certcheck.check_san(leaf, host), "wrong name"
    else:
        expiry = certcheck.check_expiry(leaf, at, _margin(probe), host)
        finding = expiry
        label = "expired" if at >= leaf.not_valid_after_utc else "expiring"
        if at < leaf.not_valid_before_utc:
            label = "not yet valid"
    text = finding.message if finding.ok else f"{label}: {finding.message}"
    return CertAspect(Verdict.ALLOW, check, finding.ok, text)


def _judge_version(task: Task, document: dict[str, Any], raw: CommandResult) -> Observation:
    version = task.probe.param("version")
    found: dict[str, Any] | None = document.get("versions", {}).get(version)
    if found is None:
        detail = f"no handshake pinned to {version!r} (known: {', '.join(VERSIONS)})"
        return Observation(plain(Verdict.ERROR), detail, raw)
    result = found.get("result")
    if result == "accepted":
        negotiated, cipher = str(found.get("version", "")), str(found.get("cipher", ""))
        outcome = VersionAnswer(Verdict.ALLOW, True, negotiated, cipher)
        return Observation(outcome, f"{version} pinned: {negotiated} {cipher}", raw)
    if result == "cannot-offer":
        return Observation(plain(Verdict.NOT_SUPPORTED), str(found.get("message")), raw)
    if result in _TURNED_DOWN and _spoke_tls(document):
        how = f"{result} {found.get('alert') or found.get('reason') or ''}".strip()
        detail = f"{version} pinned: {found.get('message')}"
        return Observation(VersionAnswer(Verdict.ALLOW, False, "", how), detail, raw)
    if result in _TURNED_DOWN:  # no handshake at all: the refusal says nothing of the version
        what = "no TLS handshake completed (default handshake"
        default = document["default"]
        detail = f"{what}: {default.get('result')}: {default.get('message')})"
        return Observation(plain(Verdict.TLS_ERROR), detail, raw)
    return _failed_handshake(f"{version} handshake", found, raw)


def _spoke_tls(document: dict[str, Any]) -> bool:
    """Some handshake of the document completed (the default one, or one pinned)."""
    attempts = [document["default"], *document.get("versions", {}).values()]
    return any(a.get("result") == "accepted" for a in attempts)


def _failed_handshake(what: str, found: dict[str, Any], raw: CommandResult) -> Observation:
    result = str(found.get("result"))
    verdict = _CONNECTION.get(result, Verdict.TLS_ERROR)
    return Observation(plain(verdict), f"{what}: {result}: {found.get('message')}", raw)
