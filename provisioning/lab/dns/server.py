"""One CoreDNS pod's server: the wire protocol over UDP and TCP on port 53 inside the pod's
network namespace, answering from the cluster's current configuration (`ClusterConfig`).

A query goes to the server block with the longest zone that is a suffix of its name; there
the kubernetes plugin answers its zones (`fallthrough` zones without a record go on), and
`forward` sends the rest upstream from inside the pod. `forward . /etc/resolv.conf` has no
upstream in the lab (the nodes have no resolver): REFUSED, never a resolver outside the lab;
an upstream outside the lab's address space is refused too. A name no block serves: REFUSED.

The `loop` plugin as CoreDNS has it (coredns/coredns plugin/loop: setup.go `setup`'s
OnStartup probe, loop.go `Loop.ServeDNS`): after every (re)load the pod asks itself `HINFO
<random>.<random>.<zone>` for each looping block with a forward; only that probe name counts,
and seeing it more than twice (its own query come back through the forward) it logs
`[FATAL] plugin/loop: Loop ... detected` and stops serving (the controller shows the pod
CrashLoopBackOff, not ready). A probe with no answer within `PROBE_TIMEOUT` (an upstream
nobody answers on) resets the count and is retried a second later, until `LOOP_PROBE_PERIOD`
is over; any answer, SERVFAIL included, ends the probing and the plugin stops counting
`LOOP_DISABLE_AFTER` later. So an unanswered forward is SERVFAIL or a timeout for that zone
alone, and every other zone keeps resolving. Runtime loops without that plugin are cut short:
a name already forwarded `MAX_IN_FLIGHT` times by this pod answers SERVFAIL at once.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from netconform.corefile import Block, in_zone, select
from provisioning.lab.dns import records
from provisioning.lab.nsenter import in_netns, listen_tcp

log = logging.getLogger("netconform.lab.dns")
FORWARD_TIMEOUT = 2.0
MAX_IN_FLIGHT = 8
TTL = 5  # the kubernetes plugin's default ttl
LOOP_SEEN_LIMIT = 2
LOOP_PROBE_PERIOD = 30.0
#: how long the probe waits for its answer: shorter than the forward's own timeout, as
#: upstream's (miekg/dns `Exchange`, 2 s) is shorter than the forward plugin's 5 s deadline, so
#: an upstream nobody answers on is a timeout for the probe (a reset), not a SERVFAIL answer
PROBE_TIMEOUT = FORWARD_TIMEOUT / 2
#: the pause before the next probe after a timeout (setup.go: `time.Sleep(1 * time.Second)`)
PROBE_RETRY = 1.0
LOOP_DISABLE_AFTER = 2.0


@dataclass
class ClusterConfig:
    """What every DNS pod of one cluster answers from (replaced as a whole on reload)."""

    blocks: tuple[Block, ...]
    objects: records.Lister
    lab_networks: tuple[ipaddress.IPv4Network, ...]
    """Where `forward` may send: the lab's VPCs, service CIDRs and LoadBalancer ranges."""
    down: bool = False
    """The `dns-down` fault: the pods receive queries and never answer."""
    generation: int = 0


@dataclass
class PodServer:
    """The DNS server of one pod."""

    netns: str
    ip: str
    config: Callable[[], ClusterConfig]
    on_log: Callable[[str], None]
    on_crash: Callable[[str], None]
    crashed: str = ""
    """The fatal log line once the loop plugin halted this server."""
    _transport: asyncio.DatagramTransport | None = None
    _tcp: asyncio.AbstractServer | None = None
    _probes: Counter[str] = field(default_factory=Counter)
    _in_flight: Counter[tuple[str, int]] = field(default_factory=Counter)
    _unanswered: set[asyncio.Future[bytes | None]] = field(default_factory=set)
    """Probes still waiting on their forward after the probe gave up on them."""

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        with in_netns(self.netns):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("0.0.0.0", 53))
        udp.setblocking(False)
        self._transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), sock=udp)
        self._tcp = await asyncio.start_server(self._serve_tcp, sock=listen_tcp(self.netns, 53))
        self.reloaded()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        if self._tcp is not None:
            self._tcp.close()

    def reloaded(self) -> None:
        """A new configuration: a crashed pod restarts with it; the loop plugin probes."""
        self.crashed = ""
        self._probes.clear()
        for block in self.config().blocks:
            if block.loop and any(t != "/etc/resolv.conf" for t in block.forward):
                name = f"{random.getrandbits(62)}.{random.getrandbits(62)}.{block.zone}"
                name = name.rstrip(".") + "." if block.zone != "." else name
                self._probes[name] = 0
                asyncio.get_running_loop().create_task(self._loop_probe(name))

    async def _loop_probe(self, name: str) -> None:
        """Ask ourselves for the probe name until something answers, this pod halts, or the
        period is over; then stop counting it (the plugin disables itself)."""
        wire = dns.message.make_query(name, dns.rdatatype.HINFO).to_wire()
        clock = asyncio.get_running_loop().time
        deadline = clock() + LOOP_PROBE_PERIOD
        while name in self._probes and clock() < deadline:
            # not cancelled on timeout: the forward finishes and logs its error, as upstream's
            sent = asyncio.ensure_future(self.answer(wire, "loop"))
            done, _ = await asyncio.wait({sent}, timeout=PROBE_TIMEOUT)
            reply = sent.result() if done else None
            if not done:
                self._unanswered.add(sent)
                sent.add_done_callback(self._unanswered.discard)
            if self.crashed or name not in self._probes:
                return
            if reply is not None:
                await asyncio.sleep(LOOP_DISABLE_AFTER)
                break
            self._probes[name] = 0  # no answer: not a loop, start counting again
            await asyncio.sleep(PROBE_RETRY)
        self._probes.pop(name, None)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            while True:
                (size,) = struct.unpack("!H", await reader.readexactly(2))
                reply = await self.answer(await reader.readexactly(size), peer[0] if peer else "?")
                if reply is None:
                    continue  # a dead server keeps the connection and says nothing
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, struct.error):
            pass
        finally:
            writer.close()

    async def answer(self, wire: bytes, client: str) -> bytes | None:
        """The reply to one query (None: no answer at all)."""
        config = self.config()
        if self.crashed or config.down:
            return None
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if not query.question:
            return _reply(query, dns.rcode.FORMERR).to_wire()
        question = query.question[0]
        qname = question.name.to_text().lower()
        if qname in self._probes:
            self._probes[qname] += 1
            if self._probes[qname] > LOOP_SEEN_LIMIT:
                self._crash(qname)
                return None
        response = await self._resolve(query, qname, question.rdtype, config)
        return response.to_wire()

    def _crash(self, qname: str) -> None:
        zone = qname.split(".", 2)[2] if qname.count(".") > 2 else "."
        self.crashed = (
            f"[FATAL] plugin/loop: Loop ({self.ip}:53 -> :53) detected for zone "
            f'"{zone}", see https://coredns.io/plugins/loop#troubleshooting. '
            f'Query: "HINFO {qname}"'
        )
        self.on_log(self.crashed)
        self.on_crash(self.crashed)

    async def _resolve(
        self,
        query: dns.message.Message,
        qname: str,
        rdtype: dns.rdatatype.RdataType,
        config: ClusterConfig,
    ) -> dns.message.Message:
        block = select(config.blocks, qname)
        if block is None:
            return _reply(query, dns.rcode.REFUSED)
        zone = next((z for z in block.kubernetes if in_zone(qname, z)), "")
        if zone:
            found = records.lookup(qname, zone, block.pods, config.objects)
            if found.exists or not any(in_zone(qname, f) for f in block.fallthrough):
                return _kubernetes_reply(query, qname, rdtype, zone, found)
        targets = [t for t in block.forward if t != "/etc/resolv.conf"]
        if not targets:
            return _reply(query, dns.rcode.REFUSED)
        return await self._forward(query, qname, rdtype, targets, config)

    async def _forward(
        self,
        query: dns.message.Message,
        qname: str,
        rdtype: dns.rdatatype.RdataType,
        targets: list[str],
        config: ClusterConfig,
    ) -> dns.message.Message:
        key = (qname, rdtype)
        limit = MAX_IN_FLIGHT * 8 if rdtype == dns.rdatatype.HINFO else MAX_IN_FLIGHT
        if self._in_flight[key] >= limit:
            self.on_log(
                f"[ERROR] plugin/forward: {qname} {dns.rdatatype.to_text(rdtype)}: "
                f"forwarded {limit} times at once: a forwarding loop"
            )
            return _reply(query, dns.rcode.SERVFAIL)
        self._in_flight[key] += 1
        try:
            for target in random.sample(targets, len(targets)):
                host, port = _split(target)
                if not any(ipaddress.IPv4Address(host) in n for n in config.lab_networks):
                    self.on_log(f"[ERROR] plugin/forward: {target} is outside the lab: not sent")
                    continue
                try:
                    wire = await _udp_exchange(self.netns, host, port, query.to_wire())
                    return dns.message.from_wire(wire)
                except (TimeoutError, OSError, dns.exception.DNSException) as err:
                    self.on_log(
                        f"[ERROR] plugin/errors: 2 {qname} {dns.rdatatype.to_text(rdtype)}"
                        f": read udp {self.ip}->{target}: {err or 'i/o timeout'}"
                    )
            return _reply(query, dns.rcode.SERVFAIL)
        finally:
            self._in_flight[key] -= 1


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: PodServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
        asyncio.get_running_loop().create_task(self._reply(data, addr))

    async def _reply(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
        reply = await self.server.answer(data, str(addr[0]))
        if reply is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)


def _split(target: str) -> tuple[str, int]:
    host = target.removeprefix("dns://")
    if ":" in host:
        host, port = host.rsplit(":", 1)
        return host, int(port)
    return host, 53


async def _udp_exchange(netns: str, host: str, port: int, wire: bytes) -> bytes:
    """One UDP exchange from inside `netns` (the pod's address is the source)."""
    loop = asyncio.get_running_loop()
    with in_netns(netns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.connect((host, port))
        await loop.sock_sendall(sock, wire)
        return await asyncio.wait_for(loop.sock_recv(sock, 65535), FORWARD_TIMEOUT)
    finally:
        sock.close()


def _reply(query: dns.message.Message, rcode: dns.rcode.Rcode) -> dns.message.Message:
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    response.flags |= dns.flags.RA
    return response


def _kubernetes_reply(
    query: dns.message.Message,
    qname: str,
    rdtype: dns.rdatatype.RdataType,
    zone: str,
    found: records.Records,
) -> dns.message.Message:
    response = _reply(query, dns.rcode.NOERROR if found.exists else dns.rcode.NXDOMAIN)
    response.flags |= dns.flags.AA
    answer: list[dns.rrset.RRset] = []
    if (found.cname and rdtype != dns.rdatatype.CNAME) or (
        rdtype == dns.rdatatype.CNAME and found.cname
    ):
        answer.append(dns.rrset.from_text(qname, TTL, "IN", "CNAME", found.cname))
    elif rdtype in (dns.rdatatype.A, dns.rdatatype.ANY) and found.a:
        answer.append(dns.rrset.from_text_list(qname, TTL, "IN", "A", list(found.a)))
    elif rdtype == dns.rdatatype.SRV and found.srv:
        count = len(found.srv)
        weight = 100 // count if count else 0
        texts = [f"0 {weight} {port} {target}" for port, target in found.srv]
        answer.append(dns.rrset.from_text_list(qname, TTL, "IN", "SRV", texts))
        for name, ip in found.extra:
            response.additional.append(dns.rrset.from_text(name, TTL, "IN", "A", ip))
    response.answer.extend(answer)
    if not answer:
        soa = f"ns.dns.{zone} hostmaster.{zone} 1 7200 1800 86400 30"
        response.authority.append(dns.rrset.from_text(zone, 30, "IN", "SOA", soa))
    return response
