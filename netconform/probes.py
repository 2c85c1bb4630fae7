"""Probes: ICMP ping and TCP connect, parsed from real tool output, run in batches.

A batch is one exec per source: a fixed shell program reads one probe per stdin line
(`ID ARG ARG ...`, whitespace-free words, globbing off), starts them in waves of
`probes_per_wave` (its only argument), and prints
each probe's exit code, stdout and stderr between markers. No shell string is ever built from
data; the data only ever become argv words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from netconform.command import CommandResult
from netconform.outcomes import Verdict
from netconform.topology import ProbeSettings
from netconform.vantage import Vantage

BATCH_PROGRAM = r"""set -f
max=$1
d=$(mktemp -d)
n=0
while read -r id args; do
  ( set -- $args; "$@" </dev/null >"$d/$id.o" 2>"$d/$id.e"; echo $? >"$d/$id.r" ) &
  n=$((n + 1))
  if [ "$n" -ge "$max" ]; then wait; n=0; fi
done
wait
set +f
for r in "$d"/*.r; do
  [ -e "$r" ] || continue
  id=${r##*/}; id=${id%.r}
  printf '\n@@probe %s %s\n' "$id" "$(cat "$r")"
  cat "$d/$id.o"
  printf '\n@@stderr\n'
  cat "$d/$id.e"
done
rm -rf "$d"
"""
_MARKER = re.compile(r"^@@probe (\S+) (\d+)$", re.MULTILINE)
_WORD = re.compile(r"^[A-Za-z0-9_.:/@=+,%-]+$")


@dataclass(frozen=True)
class ProbeSpec:
    """One probe from one source."""

    id: str
    """Unique within the batch; letters, digits, `-` and `_`."""
    kind: str
    """`ping` or `tcp`."""
    host: str
    """Destination address."""
    port: int = 0
    """TCP port (tcp probes)."""


@dataclass(frozen=True)
class PingStats:
    """The summary lines of ping (iputils or busybox)."""

    transmitted: int
    received: int
    loss_percent: float
    rtt_min: float | None = None
    rtt_avg: float | None = None
    rtt_max: float | None = None


@dataclass(frozen=True)
class ProbeResult:
    """What one probe observed."""

    spec: ProbeSpec
    verdict: Verdict
    detail: str
    """Human summary: `3/3 replies, rtt 0.04/0.05/0.07 ms`, `connection refused`."""
    raw: CommandResult
    """The tool's own output, for the report."""
    ping: PingStats | None = None


def probe_argv(spec: ProbeSpec, settings: ProbeSettings) -> list[str]:
    """The command for one probe, as the probe image's tools take it."""
    if spec.kind == "ping":
        return [
            "ping",
            "-n",
            "-q",
            "-c",
            str(settings.ping_count),
            "-i",
            f"{settings.ping_interval:g}",
            "-W",
            f"{settings.ping_deadline:g}",
            spec.host,
        ]
    if spec.kind == "tcp":
        return [
            "nc",
            "-z",
            "-v",
            "-n",
            "-w",
            f"{settings.connect_timeout:g}",
            spec.host,
            str(spec.port),
        ]
    raise ValueError(f"unknown probe kind {spec.kind!r}")


def encode_batch(specs: Sequence[ProbeSpec], settings: ProbeSettings) -> str:
    """The batch program's stdin; refuses any word the program could misread."""
    lines = []
    for spec in specs:
        words = [spec.id, *probe_argv(spec, settings)]
        for word in words:
            if not _WORD.match(word):
                raise ValueError(f"probe {spec.id}: unsafe word {word!r} in a batch line")
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
    vantage: Vantage, specs: Sequence[ProbeSpec], settings: ProbeSettings
) -> dict[str, ProbeResult]:
    """All probes of one source in one exec, concurrently; a result for every spec."""
    if not specs:
        return {}
    program = ["sh", "-c", BATCH_PROGRAM, "batch", str(settings.probes_per_wave)]
    batch = vantage.run(program, stdin=encode_batch(specs, settings))
    decoded = decode_batch(batch.stdout)
    results = {}
    for spec in specs:
        argv = tuple(probe_argv(spec, settings))
        if spec.id not in decoded:
            last = (batch.stderr.strip().splitlines() or ["no output"])[-1]
            detail = f"batch exec at {vantage.name} failed (rc {batch.rc}): {last}"
            raw = CommandResult(argv, batch.rc, batch.stdout, batch.stderr, vantage.name)
            results[spec.id] = ProbeResult(spec, Verdict.ERROR, detail, raw)
            continue
        rc, out, err = decoded[spec.id]
        raw = CommandResult(argv, rc, out, err, vantage.name)
        results[spec.id] = interpret(spec, raw, settings)
    return results


def run_batches(
    batches: Sequence[tuple[Vantage, Sequence[ProbeSpec]]], settings: ProbeSettings
) -> dict[str, dict[str, ProbeResult]]:
    """Every source's batch at once (bounded by `parallel_execs`); by vantage name."""
    with ThreadPoolExecutor(max_workers=max(1, settings.parallel_execs)) as pool:
        futures = {v.name: pool.submit(run_batch, v, specs, settings) for v, specs in batches}
        return {name: future.result() for name, future in futures.items()}


def interpret(spec: ProbeSpec, raw: CommandResult, settings: ProbeSettings) -> ProbeResult:
    if spec.kind == "ping":
        return _interpret_ping(spec, raw, settings)
    return _interpret_tcp(spec, raw)


def parse_ping(output: str) -> PingStats | None:
    """Summary of iputils or busybox ping output; None if there is none."""
    counts = re.search(r"(\d+) packets transmitted, (\d+) (?:packets )?received", output)
    if counts is None:
        return None
    loss = re.search(r"([\d.]+)% packet loss", output)
    rtt = re.search(
        r"(?:rtt|round-trip) min/avg/max(?:/mdev)? = ([\d.]+)/([\d.]+)/([\d.]+)", output
    )
    return PingStats(
        transmitted=int(counts.group(1)),
        received=int(counts.group(2)),
        loss_percent=float(loss.group(1)) if loss else 100.0,
        rtt_min=float(rtt.group(1)) if rtt else None,
        rtt_avg=float(rtt.group(2)) if rtt else None,
        rtt_max=float(rtt.group(3)) if rtt else None,
    )


def _interpret_ping(spec: ProbeSpec, raw: CommandResult, settings: ProbeSettings) -> ProbeResult:
    stats = parse_ping(raw.stdout + "\n" + raw.stderr)
    if stats is None:
        lines = (raw.stderr or raw.stdout).strip().splitlines()
        return ProbeResult(
            spec,
            Verdict.ERROR,
            f"ping gave no summary (rc {raw.rc}): {lines[-1] if lines else 'no output'}",
            raw,
        )
    replies = f"{stats.received}/{stats.transmitted} replies"
    if stats.received == 0:
        unreachable = "Unreachable" in raw.stdout + raw.stderr
        verdict = Verdict.UNREACHABLE if unreachable else Verdict.TIMEOUT
        return ProbeResult(spec, verdict, f"{replies}, {stats.loss_percent:g}% loss", raw, stats)
    detail = f"{replies}, rtt {stats.rtt_min}/{stats.rtt_avg}/{stats.rtt_max} ms"
    if stats.loss_percent > settings.max_loss_percent:
        return ProbeResult(
            spec, Verdict.LOSS, f"{detail}, {stats.loss_percent:g}% loss", raw, stats
        )
    return ProbeResult(spec, Verdict.ALLOW, detail, raw, stats)


def _interpret_tcp(spec: ProbeSpec, raw: CommandResult) -> ProbeResult:
    text = (raw.stderr + "\n" + raw.stdout).lower()
    if raw.rc == 0:
        return ProbeResult(spec, Verdict.ALLOW, "connected", raw)
    if "refused" in text:
        return ProbeResult(spec, Verdict.REFUSED, "connection refused", raw)
    if "no route" in text or "unreachable" in text:
        return ProbeResult(spec, Verdict.UNREACHABLE, "no route to host", raw)
    if "timed out" in text or "in progress" in text:
        return ProbeResult(spec, Verdict.TIMEOUT, "connect timed out", raw)
    return ProbeResult(spec, Verdict.ERROR, f"nc rc {raw.rc}: {raw.stderr.strip()[:120]}", raw)
