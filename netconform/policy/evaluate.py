"""The NetworkPolicy oracle: which (source pod, destination pod, port, protocol) are allowed.

Semantics (policy-assistant's matcher, ../shared/SEMANTICS.md; Kubernetes API reference):

- allowed = egress of the source permits AND ingress of the destination permits;
- a pod selected by no policy of a direction (policyTypes) is open in that direction;
  the policies selecting it are a union: any rule of any of them admits;
- an empty rule list denies the direction; a rule with neither peers nor ports admits all;
  ports only: those ports from/to every peer; peers are ORed;
- namespaceSelector absent = the policy's namespace, empty = every namespace; podSelector
  absent or empty = every pod; both in one peer = AND; selector peers match only pods of the
  policy's own cluster (traffic from other clusters arrives with the source pod's IP, so only
  ipBlock peers can match it);
- ipBlock matches any IP in its CIDR and not in its exceptions, pod IPs included, any cluster;
- protocol defaults to TCP; an absent port is every port; endPort is inclusive; a named port
  is looked up among the destination pod's container ports (name and protocol). In an egress
  rule the destination must be in the policy's cluster for a named port to resolve: the
  enforcing cluster knows only its own pods' ports;
- ICMP is not governed by port rules: a ping is admitted only by a rule without ports (absent
  or empty list), which is what CNIs program for NetworkPolicy.

Evaluation is on bit sets (Python ints, bit i = pod i): selector matches are computed once when
the set is built; `matrix` gives every source's allowed destinations for one port in a few
set operations per distinct source signature.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from netconform.policy.model import (
    ICMP,
    NamespaceInfo,
    Peer,
    Pod,
    Policy,
    PortRule,
    Rule,
    protocol_of,
)


@dataclass(frozen=True)
class _Compiled:
    """A rule with its peers resolved to pods."""

    policy: Policy
    index: int
    """The rule's position in its list (0-based)."""
    rule: Rule
    peers: int
    """Every pod a peer matches (all pods when the rule has no peers)."""
    selected: int
    """The pods its policy selects."""
    cluster: int
    """The pods of its policy's cluster."""


def traffic(protocol: str, port: int) -> str:
    """`tcp/6379`, or `icmp`."""
    proto = protocol_of(protocol)
    return "icmp" if proto == ICMP else f"{proto.lower()}/{port}"


class PolicySet:
    """Policies, namespaces and pods of every cluster, with selector matches precomputed.

    Built once, then queried: `allowed` and `why` for one case, `matrix` for a whole port.
    """

    def __init__(
        self,
        policies: Iterable[Policy],
        namespaces: Iterable[NamespaceInfo],
        pods: Iterable[Pod],
    ) -> None:
        self.pods: tuple[Pod, ...] = tuple(pods)
        self.policies: tuple[Policy, ...] = tuple(policies)
        self._all = (1 << len(self.pods)) - 1
        self._by_ip: dict[tuple[str, str], int] = {}
        self._by_name: dict[tuple[str, str], list[int]] = {}
        self._cluster: dict[str, int] = {}
        ns_pods: dict[tuple[str, str], int] = {}
        for i, p in enumerate(self.pods):
            bit = 1 << i
            if p.ip:
                self._by_ip[p.cluster, p.ip] = i
            self._by_name.setdefault((p.cluster, p.name), []).append(i)
            self._by_name.setdefault((p.cluster, f"{p.namespace}/{p.name}"), []).append(i)
            self._cluster[p.cluster] = self._cluster.get(p.cluster, 0) | bit
            ns_pods[p.cluster, p.namespace] = ns_pods.get((p.cluster, p.namespace), 0) | bit
        self._pod_labels = [dict(p.labels) for p in self.pods]
        self._addresses = [ipaddress.ip_address(p.ip) if p.ip else None for p in self.pods]
        spaces = {(n.cluster, n.name): n for n in namespaces}
        for cluster, name in ns_pods:
            spaces.setdefault((cluster, name), NamespaceInfo(cluster, name))
        self._ns_labels = {key: n.effective_labels for key, n in spaces.items()}
        self._ns_pods = ns_pods
        self._named: dict[tuple[str, str, int], int] = {}
        for i, p in enumerate(self.pods):
            for cp in p.ports:
                if cp.name:
                    key = (cp.name, cp.protocol.upper(), cp.port)
                    self._named[key] = self._named.get(key, 0) | (1 << i)

        self._ingress: list[_Compiled] = []
        self._egress: list[_Compiled] = []
        ingress_of: list[list[int]] = [[] for _ in self.pods]
        egress_of: list[list[int]] = [[] for _ in self.pods]
        self.ingress_isolated = 0
        self.egress_isolated = 0
        self._selected: dict[Policy, int] = {}
        for policy in self.policies:
            selected = self._select(policy)
            self._selected[policy] = selected
            home = self._cluster.get(policy.cluster, 0)
            if "Ingress" in policy.types:
                self.ingress_isolated |= selected
                for n, rule in enumerate(policy.ingress):
                    c = _Compiled(policy, n, rule, self._peers(policy, rule), selected, home)
                    self._ingress.append(c)
            if "Egress" in policy.types:
                self.egress_isolated |= selected
                first = len(self._egress)
                for n, rule in enumerate(policy.egress):
                    c = _Compiled(policy, n, rule, self._peers(policy, rule), selected, home)
                    self._egress.append(c)
                for i in _bits(selected):
                    egress_of[i].extend(range(first, len(self._egress)))
        for r, c in enumerate(self._ingress):
            for i in _bits(c.peers):
                ingress_of[i].append(r)
        # Sources grouped by what decides for them: the egress rules of the policies selecting
        # them, and the ingress rules whose peers they match.
        self._egress_sig = [tuple(x) for x in egress_of]
        self._ingress_sig = [tuple(x) for x in ingress_of]
        self._egress_rules_of = egress_of
        self._port_cache: dict[tuple[int, bool, str, int], int] = {}

    # -- building ------------------------------------------------------------------------

    def _select(self, policy: Policy) -> int:
        mask = self._ns_pods.get((policy.cluster, policy.namespace), 0)
        return sum(1 << i for i in _bits(mask) if policy.pod_selector.matches(self._pod_labels[i]))

    def _peers(self, policy: Policy, rule: Rule) -> int:
        if not rule.peers:
            return self._all
        mask = 0
        for peer in rule.peers:
            mask |= self._peer(policy, peer)
        return mask

    def _peer(self, policy: Policy, peer: Peer) -> int:
        if peer.ip_block is not None:
            block = peer.ip_block
            return sum(
                1 << i
                for i, addr in enumerate(self._addresses)
                if addr is not None and block.contains_address(addr)
            )
        if peer.namespace_selector is None:
            spaces = [policy.namespace]
        else:
            sel = peer.namespace_selector
            spaces = [
                name
                for (cluster, name), have in self._ns_labels.items()
                if cluster == policy.cluster and sel.matches(have)
            ]
        mask = 0
        for ns in spaces:
            candidates = self._ns_pods.get((policy.cluster, ns), 0)
            if peer.pod_selector is None or not (
                peer.pod_selector.match_labels or peer.pod_selector.expressions
            ):
                mask |= candidates
            else:
                sel = peer.pod_selector
                mask |= sum(1 << i for i in _bits(candidates) if sel.matches(self._pod_labels[i]))
        return mask

    # -- ports ---------------------------------------------------------------------------

    def _port_mask(self, r: int, egress: bool, protocol: str, port: int) -> int:
        """The destination pods on which rule `r`'s ports admit `protocol`/`port`."""
        key = (r, egress, protocol, port)
        cached = self._port_cache.get(key)
        if cached is not None:
            return cached
        c = (self._egress if egress else self._ingress)[r]
        mask = _ports_mask(c.rule.ports, protocol, port, self._all, self._named, c.cluster)
        self._port_cache[key] = mask
        return mask

    # -- one case ------------------------------------------------------------------------

    def index(self, cluster: str, ip_or_name: str) -> int:
        """The pod of `cluster` with that IP, name or `namespace/name`."""
        if (cluster, ip_or_name) in self._by_ip:
            return self._by_ip[cluster, ip_or_name]
        found = self._by_name.get((cluster, ip_or_name), [])
        if len(found) == 1:
            return found[0]
        what = "ambiguous (name it namespace/name)" if found else "not a known pod"
        raise LookupError(f"{cluster}/{ip_or_name}: {what}")

    def _of(self, pod: Pod) -> int:
        return self.index(pod.cluster, pod.ip or f"{pod.namespace}/{pod.name}")

    def pod(self, cluster: str, ip_or_name: str) -> Pod:
        return self.pods[self.index(cluster, ip_or_name)]

    def _egress_admitting(self, s: int, d: int, protocol: str, port: int) -> list[_Compiled]:
        return [
            self._egress[r]
            for r in self._egress_rules_of[s]
            if self._egress[r].peers >> d & 1 and self._port_mask(r, True, protocol, port) >> d & 1
        ]

    def _ingress_admitting(self, s: int, d: int, protocol: str, port: int) -> list[_Compiled]:
        return [
            self._ingress[r]
            for r in self._ingress_sig[s]
            if self._ingress[r].selected >> d & 1
            and self._port_mask(r, False, protocol, port) >> d & 1
        ]

    def _decide(
        self, src: Pod | int, dst: Pod | int, port: int, protocol: str
    ) -> tuple[int, int, str, bool, bool]:
        s = src if isinstance(src, int) else self._of(src)
        d = dst if isinstance(dst, int) else self._of(dst)
        proto = protocol_of(protocol)
        out = not (self.egress_isolated >> s & 1) or bool(self._egress_admitting(s, d, proto, port))
        into = not (self.ingress_isolated >> d & 1) or bool(
            self._ingress_admitting(s, d, proto, port)
        )
        return s, d, proto, out, into

    def allowed(self, src: Pod | int, dst: Pod | int, port: int, protocol: str = "TCP") -> bool:
        """Egress of `src` and ingress of `dst` both admit `protocol`/`port` (pods or indexes)."""
        _, _, _, out, into = self._decide(src, dst, port, protocol)
        return out and into

    def why(self, src: Pod | int, dst: Pod | int, port: int, protocol: str = "TCP") -> str:
        """The verdict in words, naming the deciding policies and rules."""
        s, d, proto, out, into = self._decide(src, dst, port, protocol)
        sp, dp = self.pods[s], self.pods[d]
        what = traffic(proto, port)
        parts = []
        if not into:
            names = self._names(self._selecting(d, ingress=True))
            parts.append(
                f"ingress of {dp.label} denied by {names} "
                f"(no rule of {_it(names)} admits {sp.label} on {what})"
            )
        if not out:
            names = self._names(self._selecting(s, ingress=False))
            parts.append(
                f"egress of {sp.label} denied by {names} "
                f"(no rule of {_it(names)} admits {dp.label} on {what})"
            )
        if parts:
            return "; ".join(parts)
        return (
            f"allowed {sp.label} -> {dp.label} on {what}: "
            f"egress {self._admitted(s, d, proto, port, egress=True)}, "
            f"ingress {self._admitted(s, d, proto, port, egress=False)}"
        )

    def _selecting(self, i: int, ingress: bool) -> list[Policy]:
        kind = "Ingress" if ingress else "Egress"
        return [p for p in self.policies if kind in p.types and self._selected[p] >> i & 1]

    @staticmethod
    def _names(policies: Sequence[Policy]) -> str:
        return ", ".join(p.name for p in policies)

    def _admitted(self, s: int, d: int, proto: str, port: int, egress: bool) -> str:
        isolated = self.egress_isolated if egress else self.ingress_isolated
        i = s if egress else d
        if not isolated >> i & 1:
            return "open (no policy selects it)"
        rules = (self._egress_admitting if egress else self._ingress_admitting)(s, d, proto, port)
        return "admitted by " + ", ".join(f"{c.policy.name} rule {c.index + 1}" for c in rules)

    # -- every case ----------------------------------------------------------------------

    def matrix(self, port: int, protocol: str = "TCP") -> tuple[int, ...]:
        """For each pod i (as a source), the bit set of destinations it may reach."""
        proto = protocol_of(protocol)
        every = self._all
        egress: dict[tuple[int, ...], int] = {}
        ingress: dict[tuple[int, ...], int] = {}
        open_in = every & ~self.ingress_isolated
        rows = []
        for s in range(len(self.pods)):
            esig = self._egress_sig[s]
            out = egress.get(esig) if self.egress_isolated >> s & 1 else every
            if out is None:
                out = 0
                for r in esig:
                    out |= self._egress[r].peers & self._port_mask(r, True, proto, port)
                egress[esig] = out
            isig = self._ingress_sig[s]
            into = ingress.get(isig)
            if into is None:
                into = open_in
                for r in isig:
                    into |= self._ingress[r].selected & self._port_mask(r, False, proto, port)
                ingress[isig] = into
            rows.append(out & into)
        return tuple(rows)


def _ports_mask(
    ports: Sequence[PortRule],
    protocol: str,
    port: int,
    every: int,
    named: dict[tuple[str, str, int], int],
    cluster: int,
) -> int:
    """The destination pods on which `ports` admit `protocol`/`port` (all or none, except
    for named ports, which resolve per pod within the policy's cluster)."""
    if not ports:
        return every
    if protocol == ICMP:
        return 0
    mask = 0
    for pr in ports:
        if pr.protocol != protocol:
            continue
        if pr.port is None:
            return every
        if isinstance(pr.port, int):
            end = pr.end_port if pr.end_port is not None else pr.port
            if pr.port <= port <= end:
                return every
        else:
            mask |= named.get((pr.port, protocol, port), 0) & cluster
    return mask


def _bits(mask: int) -> list[int]:
    """The positions of the set bits."""
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


def _it(names: str) -> str:
    return "them" if ", " in names else "it"
