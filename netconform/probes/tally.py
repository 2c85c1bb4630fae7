"""Tally: many HTTP requests to one destination, each on a new connection, and how many each
backend answered (echo answers name their pod) and how many failed. The canary suite's
measure of a traffic split, one round at a time.

One curl process makes them all, sequentially; `Connection: close` makes every request a new
connection (a new source port, so a new pick of the load balancer and the ingress pod too).
An answer that is not 2xx, or not an echo's, is an error: never counted as either backend.

Parameters: `requests` (how many), `headers` (`Name:value` pairs, comma-separated), and for
ingress destinations the host and path come from the destination.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from netconform.command import CommandResult
from netconform.echo import parse_echo
from netconform.outcomes import Outcome, Verdict, plain
from netconform.probes.base import Observation, ProbeKind, Task, last_line, register
from netconform.probes.http import CURL_CODES
from netconform.topology import ProbeSettings

DEFAULT_REQUESTS = 20


@dataclass(frozen=True)
class Tally(Outcome):
    """Answers per backend pod and failures per reason."""

    answers: tuple[tuple[str, int], ...] = ()
    errors: tuple[tuple[str, int], ...] = ()

    @property
    def answered(self) -> int:
        return sum(n for _, n in self.answers)

    @property
    def failed(self) -> int:
        return sum(n for _, n in self.errors)

    def count(self, pods: tuple[str, ...] | frozenset[str]) -> int:
        """Answers from the pods given."""
        return sum(n for pod, n in self.answers if pod in pods)

    def __add__(self, other: Tally) -> Tally:
        """Two tallies of the same destination as one."""
        answers, errors = Counter(dict(self.answers)), Counter(dict(self.errors))
        answers.update(dict(other.answers))
        errors.update(dict(other.errors))
        return Tally(self.verdict, tuple(sorted(answers.items())), tuple(sorted(errors.items())))

    def __str__(self) -> str:
        pods = ", ".join(f"{p} x{n}" for p, n in self.answers) or "none"
        errors = (
            f"; errors: {', '.join(f'{e} x{n}' for e, n in self.errors)}" if self.errors else ""
        )
        return f"{self.answered} answer(s): {pods}{errors}"


@register
class TallyKind(ProbeKind):
    name = "tally"
    tools = ("curl",)

    def argv(self, task: Task, settings: ProbeSettings) -> list[str]:
        dest, probe = task.destination, task.probe
        port = probe.port or 80
        count = int(probe.param("requests", str(DEFAULT_REQUESTS)))
        host = dest.host or dest.ip
        argv = ["curl", "-sS", "-H", "Connection:close", "-w", "\\n%{json}\\n"]
        argv += ["--connect-timeout", f"{settings.connect_timeout:g}"]
        argv += ["--max-time", f"{2 * settings.connect_timeout:g}"]
        if dest.host and dest.host != dest.ip:
            argv += ["--resolve", f"{dest.host}:{port}:{dest.ip}"]
        for header in filter(None, probe.param("headers").split(",")):
            argv += ["-H", header]
        return argv + [f"http://{host}:{port}{dest.path or '/'}"] * count

    def parse(self, task: Task, raw: CommandResult, settings: ProbeSettings) -> Observation:
        answers: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        body: list[str] = []
        results = 0
        for line in raw.stdout.splitlines():
            info = _write_out(line)
            if info is None:
                body.append(line)
                continue
            results += 1
            _count(info, "\n".join(body), answers, errors)
            body = []
        if not results:
            return Observation(plain(Verdict.ERROR), f"curl gave no result: {last_line(raw)}", raw)
        outcome = Tally(
            Verdict.ALLOW, tuple(sorted(answers.items())), tuple(sorted(errors.items()))
        )
        headers = task.probe.param("headers")
        return Observation(outcome, (f"with {headers}: " if headers else "") + str(outcome), raw)


def _write_out(line: str) -> dict[str, object] | None:
    if not line.startswith("{") or '"exitcode"' not in line:
        return None
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and "http_code" in doc else None


def _count(info: dict[str, object], body: str, answers: Counter[str], errors: Counter[str]) -> None:
    code = int(str(info.get("exitcode") or 0))
    if code:
        errors[CURL_CODES.get(code, (Verdict.ERROR, f"curl exit {code}"))[1]] += 1
        return
    status = int(str(info.get("http_code") or 0))
    answer = parse_echo(body)
    if not 200 <= status < 300:
        errors[f"HTTP {status}"] += 1
    elif answer is None:
        errors[f"HTTP {status} not from an echo backend"] += 1
    else:
        answers[answer.pod] += 1
