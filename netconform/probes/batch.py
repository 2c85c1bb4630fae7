"""Batches: every probe of one source in ONE exec, run concurrently inside it.

A fixed shell program reads one invocation per stdin line (`ID STDIN ARG ARG ...`,
whitespace-free words, globbing off; STDIN is `-` or one word piped to the process), starts
them in waves of `probes_per_wave` (its only argument), and prints each invocation's exit
code, stdout and stderr between markers. No shell string is ever built from data; the data
only ever become argv words.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from netconform.command import CommandResult
from netconform.outcomes import PingStats, Verdict, plain
from netconform.probes.base import Invocation, Observation, Task, kind
from netconform.probes.cpu import CPU_LINES, CPU_START, STARVED_RTT_FLOOR_MS, CpuTime, parse_cpu
from netconform.topology import ProbeSettings
from netconform.vantage import Vantage

# Two processes per probe (its subshell and its tool): each writes its own framing, and one
# `cat` prints every probe's output at the end (a `cat` per file was 4 more processes per
# probe, most of a 9-region batch's CPU).
BATCH_PROGRAM = (
    r"""set -f
max=$1
"""
    + CPU_START
    + r"""
d=$(mktemp -d)
printf '\n@@stderr\n' >"$d/sep"
n=0
files=
while read -r id data args; do
  if [ "$data" = "-" ]; then
    ( set -- $args; "$@" </dev/null >"$d/$id.o" 2>"$d/$id.e"
      printf '\n@@probe %s %s\n' "$id" "$?" >"$d/$id.h" ) &
  else
    ( set -- $args; printf '%s\n' "$data" | "$@" >"$d/$id.o" 2>"$d/$id.e"
      printf '\n@@probe %s %s\n' "$id" "$?" >"$d/$id.h" ) &
  fi
  files="$files $d/$id.h $d/$id.o $d/sep $d/$id.e"
  n=$((n + 1))
  if [ "$n" -ge "$max" ]; then wait; n=0; fi
done
wait
"""
    + CPU_LINES
    + r"""
[ -z "$files" ] || cat $files
rm -rf "$d"
"""
)
_MARKER = re.compile(r"^@@probe (\S+) (\d+)$", re.MULTILINE)
# `?` and `&` only ever reach argv: the program splits words with globbing off (`set -f`)
_WORD = re.compile(r"^[A-Za-z0-9_.:/@=+,%{}\\\[\]?&-]+$")


def plan_invocations(tasks: Sequence[Task], settings: ProbeSettings) -> list[Invocation]:
    """Each kind groups its own tasks into processes."""
    by_kind: dict[str, list[Task]] = {}
    for task in tasks:
        by_kind.setdefault(task.probe.kind, []).append(task)
    invocations: list[Invocation] = []
    for name, group in by_kind.items():
        invocations += kind(name).invocations(group, settings)
    return invocations


def encode_batch(invocations: Sequence[Invocation]) -> str:
    """The batch program's stdin; refuses any word the program could misread."""
    lines = []
    for i, inv in enumerate(invocations):
        words = [f"i{i}", inv.stdin or "-", *inv.argv]
        for word in words:
            if not _WORD.match(word):
                raise ValueError(f"probe {inv.tasks[0].id}: unsafe word {word!r} in a batch line")
        lines.append(" ".join(words))
    return "\n".join(lines) + "\n"


def decode_batch(output: str) -> dict[str, tuple[int, str, str]]:
    """id -> (rc, stdout, stderr) from the batch program's output."""
    results: dict[str, tuple[int, str, str]] = {}
    marks = list(_MARKER.finditer(output))
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(output)
        body = output[mark.end() + 1 : end]
        out, _, err = body.partition("\n@@stderr\n")
        results[mark.group(1)] = (int(mark.group(2)), out.strip("\n"), err.strip("\n"))
    return results


def run_batch(
    vantage: Vantage, tasks: Sequence[Task], settings: ProbeSettings
) -> dict[str, Observation]:
    """All tasks of one source in one exec, concurrently; an observation for every task."""
    if not tasks:
        return {}
    invocations = plan_invocations(tasks, settings)
    program = ["sh", "-c", BATCH_PROGRAM, "batch", str(settings.probes_per_wave)]
    batch = vantage.run(program, stdin=encode_batch(invocations))
    decoded = decode_batch(batch.stdout)
    observations: dict[str, Observation] = {}
    for i, inv in enumerate(invocations):
        if f"i{i}" not in decoded:
            observations.update(_batch_failed(vantage, inv, batch))
            continue
        rc, out, err = decoded[f"i{i}"]
        raw = CommandResult(inv.argv, rc, out, err, vantage.name)
        observations.update(kind(inv.tasks[0].probe.kind).interpret(inv, raw, settings))
    cpu = parse_cpu(batch.stdout)
    return {k: mark_starved(o, cpu) for k, o in observations.items()} if cpu else observations


def mark_starved(observation: Observation, cpu: CpuTime) -> Observation:
    """Every observation of a batch starved of CPU where it ran is flagged `starved` (its
    timings, dig's or curl's, include scheduling delay). A ping is flagged only when the
    starvation could have changed its figure: it measured RTTs, and their spread is above
    `STARVED_RTT_FLOOR_MS` (a ping with no reply has no RTT to doubt)."""
    if not cpu.starved:
        return observation
    if observation.ping is None:
        return replace(observation, starved=True)
    spread = rtt_spread(observation.ping)
    if spread is None or spread <= STARVED_RTT_FLOOR_MS:
        return observation
    detail = (
        f"{observation.detail}, rtt spread {spread:.1f} ms while starved of CPU ({cpu.describe()})"
    )
    ping = replace(observation.ping, starved=True)
    return replace(observation, detail=detail, ping=ping, starved=True)


def rtt_spread(ping: PingStats) -> float | None:
    """max - min of a ping's RTTs in ms (None when it measured none)."""
    if ping.rtt_min is None or ping.rtt_max is None:
        return None
    return ping.rtt_max - ping.rtt_min


def _batch_failed(
    vantage: Vantage, inv: Invocation, batch: CommandResult
) -> dict[str, Observation]:
    last = (batch.stderr.strip().splitlines() or ["no output"])[-1]
    detail = f"batch exec at {vantage.name} failed (rc {batch.rc}): {last}"
    raw = CommandResult(inv.argv, batch.rc, batch.stdout, batch.stderr, vantage.name)
    return {t.id: Observation(plain(Verdict.ERROR), detail, raw) for t in inv.tasks}


def run_batches(
    batches: Mapping[str, tuple[Vantage, Sequence[Task]]], settings: ProbeSettings
) -> dict[str, dict[str, Observation]]:
    """Every source's batch at once (bounded by `parallel_execs`); by the caller's key."""
    with ThreadPoolExecutor(max_workers=max(1, settings.parallel_execs)) as pool:
        futures = {
            key: pool.submit(run_batch, vantage, tasks, settings)
            for key, (vantage, tasks) in batches.items()
        }
        return {key: future.result() for key, future in futures.items()}
