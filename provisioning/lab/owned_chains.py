"""Chains a lab controller owns in a namespace's iptables tables, and nothing else.

Written as kube-proxy's iptables mode writes its own (pkg/proxy/iptables/proxier.go,
`syncProxyRules`): the owner's chains go in with `iptables-restore --noflush` declaring only
them (a declared chain is flushed and refilled, every other chain and rule of the table is left
as it is), chains it wrote before and no longer needs are flushed and deleted (`-X`) in the
same transaction, and the jumps from the built-in chains into its chains are kept in place
idempotently (`iptables -C`, inserted at the top only when missing), as kube-proxy's
`EnsureRule(Prepend, ...)` does on a full sync. A full sync reads which chains of the owner
exist in the namespace (`iptables-save`) and checks the jumps; a partial sync trusts what
this owner wrote last time, so a Service event costs one process per node (a full sync two:
the jumps are read from the same save, and only a missing one costs an `iptables -C`).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from netconform.errors import LabError
from provisioning.lab import network

#: kube-proxy's `syncPeriod` in the lab: how often it rewrites its chains in full, so a flushed
#: `KUBE-SERVICES` is repaired within this (upstream defaults to 30 s; the lab's tests wait
#: for a repair, so it is short here; `netconform-lab up --sync-period` sets it)
SYNC_PERIOD = 5.0
BUILTIN_CHAINS = frozenset({"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"})


@dataclass(frozen=True)
class Jump:
    """A rule in a built-in chain that sends traffic into an owned chain."""

    table: str
    chain: str
    target: str
    match: tuple[str, ...] = ()

    def spec(self) -> list[str]:
        return [*self.match, "-j", self.target]


@dataclass(frozen=True)
class TableRules:
    """An owner's chains of one table and their rules (`-A CHAIN ...` lines, owned chains only)."""

    chains: tuple[str, ...]
    rules: tuple[str, ...]


Tables = Mapping[str, TableRules]


class ChainOwner:
    """One controller's chains, written into many namespaces."""

    def __init__(self, prefixes: tuple[str, ...], jumps: Sequence[Jump]) -> None:
        self.prefixes = prefixes
        self.jumps = tuple(jumps)
        self._written: dict[str, dict[str, set[str]]] = {}
        """netns -> table -> the chains this owner wrote there last."""

    def owns(self, chain: str) -> bool:
        return chain.startswith(self.prefixes)

    def write(self, netns: str, tables: Tables, full: bool = False) -> None:
        """Replace this owner's chains in `netns` with `tables` (a first write is a full one)."""
        full = full or netns not in self._written
        saved = Saved.read(netns, self.owns) if full else None
        before = saved.chains if saved is not None else self._written[netns]
        text = self.render(tables, before)
        if text:
            network.iptables_restore(netns, text, table_only=True)
        if saved is not None:
            ensure_jumps(netns, [j for j in self.jumps if not saved.has_jump(j)])
        self._written[netns] = {t: set(r.chains) for t, r in tables.items()}

    def forget(self, netns: str) -> None:
        """The namespace is gone (or another writer reset it): the next write is full."""
        self._written.pop(netns, None)

    def render(self, tables: Tables, before: Mapping[str, set[str]]) -> str:
        """`iptables-restore --noflush` input: the owned chains declared (so flushed), their
        rules, and every chain of this owner written before and not wanted now deleted."""
        out: list[str] = []
        for table in sorted(set(tables) | set(before)):
            want = tables.get(table, TableRules((), ()))
            self._check(table, want)
            stale = sorted(before.get(table, set()) - set(want.chains))
            if not want.chains and not stale:
                continue
            out += [f"*{table}", *(f":{c} - [0:0]" for c in (*want.chains, *stale))]
            out += [*want.rules, *(f"-X {c}" for c in stale), "COMMIT"]
        return "\n".join(out) + "\n" if out else ""

    def _check(self, table: str, want: TableRules) -> None:
        """Never a built-in chain, nor a rule outside the owner's chains."""
        for chain in want.chains:
            if chain in BUILTIN_CHAINS or not self.owns(chain):
                raise LabError(f"{table}: chain {chain} is not one of {self.prefixes}")
        declared = set(want.chains)
        for rule in want.rules:
            words = rule.split(maxsplit=2)
            if len(words) < 2 or words[0] != "-A" or words[1] not in declared:
                raise LabError(f"{table}: rule outside the owned chains: {rule}")


@dataclass(frozen=True)
class Saved:
    """What one `iptables-save` of a namespace says about an owner: its chains per table, and
    the rules of the built-in chains (to see its jumps without an `iptables -C` each)."""

    chains: dict[str, set[str]]
    builtin_rules: frozenset[tuple[str, str]]
    """(table, `-A CHAIN ...` line) of every rule in a built-in chain."""

    @classmethod
    def read(cls, netns: str, owns: Callable[[str], bool]) -> Saved:
        text = network.run(["ip", "netns", "exec", netns, "iptables-save"])
        chains: dict[str, set[str]] = {}
        rules: set[tuple[str, str]] = set()
        table = ""
        for line in text.splitlines():
            if line.startswith("*"):
                table = line[1:].strip()
            elif line.startswith(":") and table and owns(line[1:].split()[0]):
                chains.setdefault(table, set()).add(line[1:].split()[0])
            elif line.startswith("-A ") and line.split()[1] in BUILTIN_CHAINS:
                rules.add((table, line.strip()))
        return cls(chains, frozenset(rules))

    def has_jump(self, jump: Jump) -> bool:
        """Seen in the save (a jump whose match iptables-save writes differently is not seen,
        and `ensure_jumps` checks it with `iptables -C` instead)."""
        return (jump.table, " ".join(["-A", jump.chain, *jump.spec()])) in self.builtin_rules


def ensure_jumps(netns: str, jumps: Sequence[Jump]) -> None:
    """Each jump checked with `iptables -C` and inserted at the top only when missing (one
    shell for all of them, so a full sync costs one process per namespace here)."""
    if not jumps:
        return
    script = "; ".join(_ensure_line(j) for j in jumps)
    network.run(["ip", "netns", "exec", netns, "sh", "-ec", script])


def _ensure_line(jump: Jump) -> str:
    spec = " ".join(shlex.quote(w) for w in jump.spec())
    base = f"iptables -w -t {jump.table}"
    return f"{base} -C {jump.chain} {spec} 2>/dev/null || {base} -I {jump.chain} 1 {spec}"
