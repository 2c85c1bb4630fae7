"""The parts of CoreDNS's configuration netconform reads: Corefile server blocks and the
legacy kube-dns `stubDomains`, parsed into `Block`s, with CoreDNS's own error wording. One
parser for the lab's DNS (what it serves), the DNS LB check's stub audit (what a cluster
forwards) and the glue (`netconform-kube`, what it writes).

A Corefile is server blocks (`zone[:port] ... { directive args... }`), one directive per
line, nested `{ }` option blocks, `#` comments. Unknown directives are errors, as in CoreDNS
(so `errors;` is one, as it is there). kube-dns `stubDomains` become one block per zone with
`errors`, `cache 30`, `loop` and `forward . IP...`, as kubeadm's migration writes them.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

KNOWN_PLUGINS = frozenset(
    [
        "errors",
        "health",
        "ready",
        "kubernetes",
        "prometheus",
        "forward",
        "cache",
        "loop",
        "reload",
        "loadbalance",
        "log",
        "debug",
        "whoami",
        "hosts",
        "rewrite",
        "template",
        "autopath",
        "bind",
        "metadata",
        "any",
        "acl",
        "local",
    ]
)
DEFAULT_PORT = 53


class CorefileError(ValueError):
    """The configuration does not parse; the message reads like CoreDNS's."""


@dataclass(frozen=True)
class Block:
    """One server block (one per zone: CoreDNS splits `a b { }` into two servers)."""

    zone: str
    """Lowercase, absolute (`west.svc.cluster.local.`, `.`)."""
    plugins: tuple[str, ...]
    forward: tuple[str, ...] = ()
    """Upstreams of `forward . ...` (an IP, IP:port, or `/etc/resolv.conf`)."""
    kubernetes: tuple[str, ...] = ()
    """Zones the kubernetes plugin serves in this block."""
    pods: str = "disabled"
    """kubernetes `pods` mode: disabled, insecure or verified."""
    fallthrough: tuple[str, ...] = ()
    """Zones the kubernetes plugin passes on when it has no record (`fallthrough ...`)."""
    cache: int = 0
    origin: str = "Corefile"
    """Where the block came from (`Corefile`, `stubDomains`)."""

    @property
    def loop(self) -> bool:
        return "loop" in self.plugins


def fqdn(name: str) -> str:
    name = name.strip().lower()
    return name if name.endswith(".") else name + "."


def _tokens(text: str) -> list[tuple[int, list[str]]]:
    """(line number, words) per non-empty line; braces are words of their own."""
    lines = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].replace("{", " { ").replace("}", " } ")
        if line.split():
            lines.append((number, line.split()))
    return lines


def parse_corefile(text: str) -> tuple[Block, ...]:
    """The server blocks of a Corefile; CorefileError naming the line when it does not parse."""
    blocks: list[Block] = []
    lines = _tokens(text)
    i = 0
    while i < len(lines):
        number, words = lines[i]
        if words[-1] != "{" or "}" in words:
            raise CorefileError(
                f"Corefile:{number} - Error during parsing: Unexpected token "
                f"'{words[-1]}', expecting '{{'"
            )
        keys = [_server_key(number, w) for w in words[:-1]]
        if not keys:
            raise CorefileError(f"Corefile:{number} - Error during parsing: missing server key")
        body, i = _block_body(lines, i + 1, number)
        blocks += [_block(zone, body) for zone in keys]
    zones = [b.zone for b in blocks]
    for zone in zones:
        if zones.count(zone) > 1:
            raise CorefileError(
                f"cannot serve dns://{zone.rstrip('.') or '.'}:53 - it is already defined"
            )
    return tuple(blocks)


def _server_key(number: int, word: str) -> str:
    zone = word.removeprefix("dns://")
    if ":" in zone:
        zone, port = zone.rsplit(":", 1)
        if port != str(DEFAULT_PORT):
            raise CorefileError(
                f"Corefile:{number} - Error during parsing: the lab serves "
                f"port 53 only, not {port!r}"
            )
    if not zone or any(not part for part in zone.rstrip(".").split(".") if zone != "."):
        raise CorefileError(f"Corefile:{number} - Error during parsing: bad zone {word!r}")
    return fqdn(zone)


def _block_body(
    lines: list[tuple[int, list[str]]], i: int, opened: int
) -> tuple[list[tuple[int, list[str]]], int]:
    """The directives up to the block's closing brace (nested option blocks kept inline)."""
    body: list[tuple[int, list[str]]] = []
    depth = 1
    while i < len(lines):
        number, words = lines[i]
        i += 1
        if words == ["}"]:
            depth -= 1
            if depth == 0:
                return body, i
        elif words[-1] == "{":
            depth += 1
        body.append((number, words))
    raise CorefileError(
        f"Corefile:{opened} - Error during parsing: Unexpected EOF (a '{{' is never closed)"
    )


def _block(zone: str, body: list[tuple[int, list[str]]]) -> Block:
    plugins: list[str] = []
    fields: dict[str, object] = {}
    current = ""
    for number, words in body:
        if words == ["}"]:
            current = ""
            continue
        name, args = words[0], [w for w in words[1:] if w != "{"]
        if current == "kubernetes" and name in ("pods", "fallthrough") and args is not None:
            if name == "pods":
                fields["pods"] = args[0] if args else "disabled"
            else:
                fields["fallthrough"] = tuple(fqdn(a) for a in args) or (".",)
            continue
        if current and name not in KNOWN_PLUGINS:
            continue  # an option inside a nested block (`lameduck 5s`, `upstream`)
        if name not in KNOWN_PLUGINS:
            raise CorefileError(
                f"Corefile:{number} - Error during parsing: Unknown directive '{name}'"
            )
        current = name if words[-1] == "{" else ""
        plugins.append(name)
        _directive(number, name, args, zone, fields)
    return Block(zone, tuple(plugins), **fields)  # type: ignore[arg-type]


def _directive(
    number: int, name: str, args: list[str], zone: str, fields: dict[str, object]
) -> None:
    where = f"Corefile:{number} - Error during parsing"
    if name == "forward":
        if len(args) < 2:
            raise CorefileError(
                f"{where}: Wrong argument count or unexpected line ending after 'forward'"
            )
        for target in args[1:]:
            if target != "/etc/resolv.conf":
                _check_address(where, target)
        fields["forward"] = tuple(args[1:])
    elif name == "kubernetes":
        fields["kubernetes"] = tuple(fqdn(a) for a in args) or (zone,)
    elif name == "cache":
        try:
            fields["cache"] = int(args[0]) if args else 3600
        except ValueError:
            raise CorefileError(f"{where}: cache: not a number: {args[0]!r}") from None


def _check_address(where: str, target: str) -> None:
    host = target.removeprefix("dns://")
    if ":" in host:
        host = host.rsplit(":", 1)[0]
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        raise CorefileError(f"{where}: not an IP address or file: {target!r}") from None


def parse_stub_domains(text: str) -> tuple[Block, ...]:
    """kube-dns `stubDomains` JSON -> one block per zone; CorefileError when malformed."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise CorefileError(f"stubDomains is not JSON: {err}") from None
    if not isinstance(data, dict):
        raise CorefileError("stubDomains must be a JSON object of zone -> [IP, ...]")
    blocks = []
    for zone, targets in sorted(data.items()):
        if not isinstance(targets, list) or not targets:
            raise CorefileError(f"stubDomains[{zone!r}] must be a non-empty list of IPs")
        for target in targets:
            _check_address(f"stubDomains[{zone!r}]", str(target))
        blocks.append(
            Block(
                fqdn(zone),
                ("errors", "cache", "loop", "forward"),
                forward=tuple(str(t) for t in targets),
                cache=30,
                origin="stubDomains",
            )
        )
    return tuple(blocks)


def merge(corefile: tuple[Block, ...], stubs: tuple[Block, ...]) -> tuple[Block, ...]:
    """The Corefile's blocks, plus stub blocks for zones it does not define (it wins)."""
    have = {b.zone for b in corefile}
    return corefile + tuple(b for b in stubs if b.zone not in have)


def select(blocks: tuple[Block, ...], qname: str) -> Block | None:
    """The block serving `qname`: the longest zone that is a suffix of it (CoreDNS's rule)."""
    name = fqdn(qname)
    best: Block | None = None
    for block in blocks:
        if in_zone(name, block.zone) and (best is None or len(block.zone) > len(best.zone)):
            best = block
    return best


def in_zone(name: str, zone: str) -> bool:
    return zone == "." or name == zone or name.endswith("." + zone)


DEFAULT_COREFILE = """.:53 {
    errors
    health {
        lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    prometheus :9153
    forward . /etc/resolv.conf
    cache 30
    loop
    reload
    loadbalance
}
"""
"""The EKS default Corefile (SEMANTICS.md "CoreDNS stubs")."""
