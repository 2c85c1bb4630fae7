"""The engine's vocabulary: named outcomes, endpoints and cases, each able to say what broke.

An outcome is what a probe observed or what an oracle expects. The plain ones are a verdict
(`ALLOW`, `TIMEOUT`, `REFUSED`, ...); richer ones carry facts (a DNS answer's addresses, an
HTTP status with its Location, certificate facts, a measured share, an MTU). An expected
outcome decides whether an observed one satisfies it, and both print the same way, so a
failure reads `expected HTTP 308 -> https://shop/ observed HTTP 200`.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from netconform.command import CommandResult
from netconform.echo import EchoAnswer, parse_echo


class Verdict(StrEnum):
    """What a probe saw, or what an expectation demands."""

    ALLOW = "ALLOW"
    """Replies came back / the connection was accepted / the server answered."""
    TIMEOUT = "TIMEOUT"
    """Silence: packets dropped somewhere."""
    REFUSED = "REFUSED"
    """The destination answered with a reset (or ICMP port unreachable): nothing listening."""
    UNREACHABLE = "UNREACHABLE"
    """An ICMP unreachable came back: no route."""
    LOSS = "LOSS"
    """Some replies, but more loss than allowed."""
    NXDOMAIN = "NXDOMAIN"
    """The name does not exist (DNS rcode 3)."""
    SERVFAIL = "SERVFAIL"
    """The DNS server failed to answer (rcode 2): a broken forward, a loop."""
    TOO_BIG = "TOO_BIG"
    """A DF packet was refused: fragmentation needed (or the local MTU is smaller)."""
    TLS_ERROR = "TLS_ERROR"
    """The TLS handshake failed."""
    ERROR = "ERROR"
    """The probe could not run (exec failed, tool missing)."""
    NOT_SUPPORTED = "NOT_SUPPORTED"
    """The probe was not run: the source cannot (the reason is the case's detail)."""


@dataclass(frozen=True)
class Outcome:
    """A plain verdict, with the facts richer outcomes add in subclasses."""

    verdict: Verdict

    def satisfied_by(self, observed: Outcome) -> bool:
        """True when `observed` is what this expectation asks for."""
        return observed.verdict == self.verdict

    def numbers(self) -> dict[str, float]:
        """The facts this outcome carries as numbers (outcome file, baseline drift); a plain
        verdict carries none. Subclasses with measured facts name theirs."""
        return {}

    def __str__(self) -> str:
        return str(self.verdict)


ALLOW = Outcome(Verdict.ALLOW)
TIMEOUT = Outcome(Verdict.TIMEOUT)
REFUSED = Outcome(Verdict.REFUSED)
NXDOMAIN = Outcome(Verdict.NXDOMAIN)
NOT_SUPPORTED = Outcome(Verdict.NOT_SUPPORTED)


def plain(verdict: Verdict) -> Outcome:
    """The outcome that is only a verdict."""
    return Outcome(verdict)


@dataclass(frozen=True)
class Answer(Outcome):
    """A DNS answer: its addresses (or SRV targets); expected empty means "any answer"."""

    records: tuple[str, ...] = ()

    def satisfied_by(self, observed: Outcome) -> bool:
        if not isinstance(observed, Answer) or observed.verdict != self.verdict:
            return False
        if not self.records:
            return bool(observed.records)  # "any answer" needs at least one record
        return set(self.records) == set(observed.records)

    def __str__(self) -> str:
        return f"ANSWER {','.join(self.records)}".rstrip()


@dataclass(frozen=True)
class HttpStatus(Outcome):
    """An HTTP response: its status code, and the Location of a redirect."""

    code: int = 0
    location: str = ""
    body: str = ""
    """The first line of the body (echo servers name their pod there); expected: text the
    observed body must contain ("" for any body)."""
    headers: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    """Response headers (lower-case names) where the probe read them."""

    def satisfied_by(self, observed: Outcome) -> bool:
        if not isinstance(observed, HttpStatus) or observed.code != self.code:
            return False
        if self.body and self.body not in observed.body:
            return False
        return not self.location or observed.location == self.location

    def header(self, name: str) -> str | None:
        """A response header's value (None when absent)."""
        return dict(self.headers).get(name.lower())

    @property
    def answer(self) -> EchoAnswer | None:
        """The echo backend that answered, when the body is an echo's."""
        return parse_echo(self.body)

    def __str__(self) -> str:
        text = f"HTTP {self.code}" + (f" -> {self.location}" if self.location else "")
        answer = self.answer
        if answer is not None:
            return f"{text} from {answer.pod}"
        return text + (f" with body {self.body[:60]!r}" if self.body else "")


@dataclass(frozen=True)
class Served(Outcome):
    """Expected: HTTP `code` answered by one of `pods` (the backend Service's ready pods);
    `backend` names that Service in messages."""

    code: int = 200
    backend: str = ""
    pods: tuple[str, ...] = ()

    def satisfied_by(self, observed: Outcome) -> bool:
        if not isinstance(observed, HttpStatus) or observed.code != self.code:
            return False
        answer = observed.answer
        return answer is not None and (not self.pods or answer.pod in self.pods)

    def __str__(self) -> str:
        return f"HTTP {self.code} from {self.backend or 'a backend'}"


@dataclass(frozen=True)
class Header(Outcome):
    """Expected: a response header present (with `value`, when given) or absent."""

    name: str = ""
    present: bool = True
    value: str = ""

    def satisfied_by(self, observed: Outcome) -> bool:
        if not isinstance(observed, HttpStatus) or observed.verdict != Verdict.ALLOW:
            return False
        seen = observed.header(self.name)
        if not self.present:
            return seen is None
        return seen is not None and (not self.value or seen == self.value)

    def __str__(self) -> str:
        if not self.present:
            return f"no {self.name} header"
        return f"{self.name}: {self.value}" if self.value else f"{self.name} header"


@dataclass(frozen=True)
class Certificate(Outcome):
    """Facts of the served certificate; expected fields left empty are not checked."""

    subject: str = ""
    issuer: str = ""
    not_after: str = ""
    verified: str = ""
    """`ok`, or the verifier's complaint (`hostname mismatch`, `self-signed certificate`)."""

    def satisfied_by(self, observed: Outcome) -> bool:
        if not isinstance(observed, Certificate) or observed.verdict != self.verdict:
            return False
        fields = ("subject", "issuer", "not_after", "verified")
        return all(not getattr(self, f) or getattr(self, f) == getattr(observed, f) for f in fields)

    def numbers(self) -> dict[str, float]:
        """`cert_not_after`: the expiry as seconds since the epoch (openssl's `Jan  1 00:00:00
        2027 GMT`), when it parses."""
        try:
            parsed = time.strptime(" ".join(self.not_after.split()), "%b %d %H:%M:%S %Y GMT")
        except ValueError:
            return {}
        return {"cert_not_after": float(calendar.timegm(parsed))}

    def __str__(self) -> str:
        parts = [
            f"{f}={getattr(self, f)}" for f in ("subject", "issuer", "verified") if getattr(self, f)
        ]
        return "CERT " + (" ".join(parts) or "(any)")


@dataclass(frozen=True)
class Share(Outcome):
    """A measured share of traffic; expected carries the accepted interval."""

    fraction: float = 0.0
    low: float = 0.0
    high: float = 1.0

    def satisfied_by(self, observed: Outcome) -> bool:
        return isinstance(observed, Share) and self.low <= observed.fraction <= self.high

    def numbers(self) -> dict[str, float]:
        return {"share": self.fraction, "share_low": self.low, "share_high": self.high}

    def __str__(self) -> str:
        if self.low == 0.0 and self.high == 1.0:
            return f"SHARE {self.fraction:.1%}"
        return f"SHARE {self.low:.1%}-{self.high:.1%}"


@dataclass(frozen=True)
class Mtu(Outcome):
    """A path MTU in bytes; expected means "at least this"."""

    size: int = 0

    def satisfied_by(self, observed: Outcome) -> bool:
        return isinstance(observed, Mtu) and observed.size >= self.size

    def numbers(self) -> dict[str, float]:
        return {"mtu": float(self.size)}

    def __str__(self) -> str:
        return f"MTU {self.size}"


@dataclass(frozen=True)
class Endpoint:
    """One end of a case: a pod, a Service (by IP or name), a node port, a LoadBalancer, an
    ingress host and path, a DNS name, or the runner."""

    cluster: str
    """The cluster it belongs to ("" for the runner or the world)."""
    name: str
    """Pod or Service name, DNS name, or `runner`."""
    ip: str
    """The address a probe dials (an IP, or a name for DNS-named destinations)."""
    node: str = ""
    """The node of a pod, or the node a NodePort is reached on."""
    kind: str = "pod"
    """pod, service, service-name, nodeport, loadbalancer, ingress, dns-name, runner."""
    host: str = ""
    """HTTP Host / TLS SNI (ingress destinations)."""
    path: str = ""
    """HTTP path (ingress destinations)."""
    record: str = ""
    """The DNS record type asked (dns-name destinations: A, SRV, ...)."""

    @property
    def label(self) -> str:
        if self.kind == "runner":
            return self.name
        where = f"{self.cluster}/" if self.cluster else ""
        if self.kind == "pod" or self.ip == self.name:
            return f"{where}{self.name} ({self.ip})" if self.ip != self.name else where + self.name
        return f"{where}{self.name}:{self.kind} ({self.ip})"


def pod(cluster: str, name: str, ip: str, node: str = "") -> Endpoint:
    return Endpoint(cluster, name, ip, node)


def service_ip(cluster: str, namespace: str, name: str, cluster_ip: str) -> Endpoint:
    return Endpoint(cluster, f"{namespace}/{name}", cluster_ip, kind="service")


def service_name(cluster: str, name: str) -> Endpoint:
    """A Service by its DNS name (`echo.west.svc.cluster.local`)."""
    return Endpoint(cluster, name, name, kind="service-name")


def node_port(cluster: str, service: str, node: str, node_ip: str) -> Endpoint:
    return Endpoint(cluster, service, node_ip, node=node, kind="nodeport")


def load_balancer(cluster: str, service: str, address: str) -> Endpoint:
    return Endpoint(cluster, service, address, kind="loadbalancer")


def ingress(cluster: str, host: str, path: str, address: str) -> Endpoint:
    return Endpoint(cluster, f"{host}{path}", address, kind="ingress", host=host, path=path)


def dns_name(cluster: str, name: str, record: str = "A") -> Endpoint:
    return Endpoint(cluster, name, name, kind="dns-name", record=record)


RUNNER = Endpoint("", "runner", "", kind="runner")


@dataclass(frozen=True)
class PingStats:
    """Echo requests sent and answered, and the round trips of the answered ones."""

    transmitted: int
    received: int
    loss_percent: float
    rtt_min: float | None = None
    rtt_avg: float | None = None
    rtt_max: float | None = None
    starved: bool = False
    """The RTTs were measured while the pinging node was starved of CPU (netconform.probes.cpu):
    they include scheduling delay, not only the network's."""
    rtts: tuple[float, ...] = field(default=(), compare=False)
    """Every answered echo's round trip in ms, where the tool prints them (fping `-C`)."""

    def numbers(self) -> dict[str, float]:
        """Counts, loss and the RTT summary, as the outcome file records them."""
        found = {
            "ping_sent": float(self.transmitted),
            "ping_received": float(self.received),
            "loss": (self.transmitted - self.received) / self.transmitted
            if self.transmitted
            else 1.0,
        }
        for name in ("rtt_min", "rtt_avg", "rtt_max"):
            value = getattr(self, name)
            if value is not None:
                found[name] = float(value)
        return found


@dataclass(frozen=True)
class Case:
    """One expectation checked against one observation."""

    source: Endpoint
    destination: Endpoint
    protocol: str
    """The probe kind (`icmp`, `tcp`, `dns`, ...)."""
    port: int
    expected: Outcome
    observed: Outcome
    detail: str
    ping: PingStats | None = None
    """Loss and RTT, for ICMP cases."""
    raw: CommandResult | None = field(default=None, compare=False, repr=False)
    """The tool's own output, for the report."""
    starved: bool = field(default=False, compare=False, repr=False)
    """Measured in a batch starved of CPU: its timings are not the network's alone."""

    @property
    def passed(self) -> bool:
        return self.expected.satisfied_by(self.observed)

    @property
    def target(self) -> str:
        port = f":{self.port}" if self.port else ""
        return f"{self.destination.label}{port}"

    def describe(self) -> str:
        return (
            f"{self.source.label} -> {self.target} {self.protocol} "
            f"expected {self.expected} observed {self.observed} ({self.detail})"
        )


SCREENFUL = 20
"""Failed cases a failure message lists; the rest are in the report's attachment."""


def failure_report(cases: Iterable[Case], cause: str = "", limit: int = SCREENFUL) -> str:
    """The failure message for a set of cases, read top-down: the likely cause first, then
    at most `limit` failed cases, one per line, and how many more the attachment holds."""
    failed = [c for c in cases if not c.passed]
    if not failed:
        return ""
    lines = [f"likely cause: {cause}"] if cause else []
    shown = failed[:limit] if limit > 0 else failed
    lines.append(f"{len(failed)} case(s) failed" + (":" if len(shown) == len(failed) else
                 f", the first {len(shown)}:"))  # fmt: skip
    lines += [f"  {case.describe()}" for case in shown]
    if len(shown) < len(failed):
        lines.append(f"  ... {len(failed) - len(shown)} more in the attachment 'failed cases'")
    return "\n".join(lines)
