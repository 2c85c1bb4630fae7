"""The engine's vocabulary: named outcomes, endpoints and cases, each able to say what broke.

An outcome is what a probe observed or what an oracle expects. The plain ones are a verdict
(`ALLOW`, `TIMEOUT`, `REFUSED`, ...); richer ones carry facts (a DNS answer's addresses, an
HTTP status with its Location, certificate facts, a measured share, an MTU). An expected
outcome decides whether an observed one satisfies it, and both print the same way, so a
failure reads `expected HTTP 308 -> https://shop/ observed HTTP 200`.
"""

from __future__ import annotations

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
    """The first line of the body (echo servers name their pod there)."""
    headers: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    """Response headers (lower-case names) where the probe read them."""

    def satisfied_by(self, observed: Outcome) -> bool:
        if not isinstance(observed, HttpStatus) or observed.code != self.code:
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
        return text + (f" from {answer.pod}" if answer is not None else "")


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


def failure_report(cases: Iterable[Case], cause: str = "") -> str:
    """The failure message for a set of cases: every failed case on its own line."""
    failed = [c for c in cases if not c.passed]
    if not failed:
        return ""
    lines = [f"{len(failed)} case(s) failed:"]
    lines += [f"  {case.describe()}" for case in failed]
    if cause:
        lines.append(f"likely cause: {cause}")
    return "\n".join(lines)
