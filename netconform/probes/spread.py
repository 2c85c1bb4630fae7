"""Spread: several HTTP requests on new connections to one address, and which backends
answered (echo servers name their pod in the body). A load balancer passes when the answers
come from as many distinct pods as it has ready endpoints (each answer read by
`netconform.echo`: ask agnhost netexec on `ECHO_PATH`, param `path`).

One curl process makes them all, at once (`-Z`: every request its own new connection, so a
new source port and a new balancing decision; a backend that cannot be reached costs the
probe one connect timeout, not one per request that picked it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from netconform.command import CommandResult
from netconform.echo import parse_echo
from netconform.outcomes import Outcome, Verdict, plain
from netconform.probes.base import Observation, ProbeKind, Task, last_line, register
from netconform.probes.http import CURL_CODES
from netconform.topology import ProbeSettings

DEFAULT_REQUESTS = 12


@dataclass(frozen=True)
class Backends(Outcome):
    """The distinct backends that answered; expected carries how many must."""

    pods: tuple[str, ...] = ()
    want: int = 0
    names: tuple[str, ...] = ()
    """Expected: these backends (a Service's ready pods) must each have answered."""

    def satisfied_by(self, observed: Outcome) -> bool:
        if not isinstance(observed, Backends) or observed.verdict != self.verdict:
            return False
        return len(observed.pods) >= self.want and set(self.names) <= set(observed.pods)

    def __str__(self) -> str:
        if self.names:
            return f"SPREAD over every ready pod: {','.join(self.names)}"
        if self.want:
            return f"SPREAD over {self.want} pod(s)"
        return f"SPREAD over {len(self.pods)} pod(s): {','.join(self.pods) or '-'}"


@register
class Spread(ProbeKind):
    name = "spread"
    tools = ("curl",)

    def argv(self, task: Task, settings: ProbeSettings) -> list[str]:
        count = int(task.probe.param("requests", str(DEFAULT_REQUESTS)))
        path = task.probe.param("path", "/")
        url = f"http://{task.destination.ip}:{task.probe.port or 80}{path}"
        argv = ["curl", "-sS", "-Z", "--parallel-immediate", "--parallel-max", str(count)]
        argv += ["-w", "\\n%{json}\\n"]
        argv += ["--connect-timeout", f"{settings.connect_timeout:g}"]
        argv += ["--max-time", f"{2 * settings.connect_timeout:g}"]
        return argv + [url] * count

    def parse(self, task: Task, raw: CommandResult, settings: ProbeSettings) -> Observation:
        pods: set[str] = set()
        codes: list[tuple[int, str]] = []
        for line in raw.stdout.splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                doc = None
            if isinstance(doc, dict) and "exitcode" in doc:
                codes.append((int(doc["exitcode"] or 0), str(doc.get("errormsg") or "")))
            elif (answer := parse_echo(line)) is not None:  # the lab's echo, agnhost's name
                pods.add(answer.pod)
        if not codes:
            return Observation(plain(Verdict.ERROR), f"curl gave no result: {last_line(raw)}", raw)
        failed = [(c, msg) for c, msg in codes if c != 0]
        if failed and not pods:
            verdict, what = CURL_CODES.get(failed[0][0], (Verdict.ERROR, "curl failed"))
            return Observation(plain(verdict), f"{what}: {failed[0][1]}".strip(), raw)
        detail = f"{len(codes) - len(failed)}/{len(codes)} answered by {', '.join(sorted(pods))}"
        return Observation(Backends(Verdict.ALLOW, tuple(sorted(pods))), detail, raw)
