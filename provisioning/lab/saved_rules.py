"""An `iptables-save` table read as a packet meets it: a built-in chain's rules in order, with
the user chains it jumps to inlined where the jump is (read-only; for the lab's cloud view).

Only what a cloud rule can say is understood: plain matches (`-s -d -p --dport -i -o`,
`-m tcp` and `-m udp`; comments are ignored). A `RETURN` in a jumped-to chain ends that chain
for the packets it matches: a match-less one skips the rest of the chain, a plain one hides
the later rules of that chain it covers (a rule it covers only in part stays: the view is
conservative there).
"""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass

PLAIN = frozenset({"-s", "-d", "-p", "--dport", "-i", "-o"})
MAX_DEPTH = 8


@dataclass(frozen=True)
class SavedRule:
    """One `-A CHAIN ...` line; `words` hold what follows the chain name."""

    chain: str
    index: int
    """1-based position in its chain."""
    words: tuple[str, ...]

    @property
    def target(self) -> str:
        words = list(self.words)
        return words[words.index("-j") + 1] if "-j" in words[:-1] else ""

    def matches(self) -> dict[str, str] | None:
        """Its plain matches (without `-j`), or None when it has any other match."""
        words, opts = list(self.words), {}
        while words:
            word = words.pop(0)
            if word == "-m" and words and words[0] in ("tcp", "udp"):
                words.pop(0)
                continue
            if word == "-m" and words[:2] == ["comment", "--comment"] and len(words) > 2:
                del words[:3]  # a comment changes nothing a packet meets
                continue
            if not word.startswith("-") or not words:
                return None
            opts[word] = words.pop(0)
        opts.pop("-j", None)
        return opts if set(opts) <= PLAIN else None

    def describe(self) -> str:
        return f"{self.chain} rule {self.index} ({' '.join(self.words)})"


@dataclass(frozen=True)
class SavedTable:
    chains: dict[str, list[SavedRule]]
    policies: dict[str, str]
    """Built-in chain -> its policy."""

    @classmethod
    def parse(cls, text: str) -> SavedTable:
        chains: dict[str, list[SavedRule]] = {}
        policies: dict[str, str] = {}
        for line in text.splitlines():
            if line.startswith(":"):
                name, policy = line[1:].split()[:2]
                chains.setdefault(name, [])
                if policy != "-":
                    policies[name] = policy
            elif line.startswith("-A "):
                words = shlex.split(line)
                rules = chains.setdefault(words[1], [])
                rules.append(SavedRule(words[1], len(rules) + 1, tuple(words[2:])))
        return cls(chains, policies)

    def walk(self, chain: str) -> list[SavedRule]:
        """The rules a packet entering `chain` meets, in order (jumps inlined)."""
        return self._walk(chain, 0)

    def _walk(self, chain: str, depth: int) -> list[SavedRule]:
        out: list[SavedRule] = []
        returns: list[dict[str, str]] = []
        for rule in self.chains.get(chain, []):
            if depth and rule.target == "RETURN":
                plain = rule.matches()
                if plain == {}:
                    break  # nothing after a match-less RETURN is reached
                if plain is not None:
                    returns.append(plain)
                continue
            plain = rule.matches()
            if plain is not None and any(_covers(r, plain) for r in returns):
                continue  # returned from before it
            if rule.target in self.chains and depth < MAX_DEPTH:
                out += [_within(rule, inner) for inner in self._walk(rule.target, depth + 1)]
            else:
                out.append(rule)
        return out


def _within(jump: SavedRule, inner: SavedRule) -> SavedRule:
    """`inner` as reached through `jump`: the jump's own matches apply to it too (its own
    value wins where both name one, a simplification)."""
    words = list(jump.words)
    cut = words.index("-j") if "-j" in words else len(words)
    return SavedRule(inner.chain, inner.index, (*words[:cut], *inner.words))


def _covers(outer: dict[str, str], inner: dict[str, str]) -> bool:
    """Every packet `inner` matches, `outer` matches too (plain matches only)."""
    for key, value in outer.items():
        if key not in inner:
            return False
        if key in ("-s", "-d"):
            if not ipaddress.IPv4Network(inner[key]).subnet_of(ipaddress.IPv4Network(value)):
                return False
        elif inner[key] != value:
            return False
    return True
