"""Was a batch's measurement starved of CPU? Read where the probes ran, by the batch itself.

The batch program prints the pod's (the node's) `/proc/uptime` and the `some` line of
`/proc/pressure/cpu` (Linux PSI) when its probes start and when they have all ended. The share
of that wall time during which some task waited for a CPU says whether timings taken in it
(ping round trips) include scheduling delay: above `STARVED_SHARE` the batch's RTTs are
flagged `starved`, not passed off as network latency. Without PSI nothing is claimed."""

from __future__ import annotations

import re
from dataclasses import dataclass

#: printed by the batch program after its probes, before their outputs (decode_batch never
#: sees it: it precedes the first `@@probe` marker)
CPU_LINES = (
    'printf \'\\n@@cpu %s | %s\\n@@cpu %s | %s\\n\' "$t0" "$p0" '
    '"$(cat /proc/uptime 2>/dev/null)" "$(head -n 1 /proc/pressure/cpu 2>/dev/null)"'
)
CPU_START = "t0=$(cat /proc/uptime 2>/dev/null); p0=$(head -n 1 /proc/pressure/cpu 2>/dev/null)"
#: some task waited for a CPU during more than this share of the batch's wall time
STARVED_SHARE = 0.5
#: A starved batch's RTTs are flagged only when their spread (max - min, ms) is above this: a
#: scheduling delay adds at least about a scheduler slice (~1 ms) to the samples it hits, so
#: a tighter spread means starvation did not change the figure (clean 0.05 ms RTTs stay clean)
STARVED_RTT_FLOOR_MS = 1.0
_LINE = re.compile(r"^@@cpu ([\d.]+)?[^|]*\|\s*(?:some .*total=(\d+))?", re.MULTILINE)


@dataclass(frozen=True)
class CpuTime:
    """The batch's wall time in the pod, and the share of it some task waited for a CPU."""

    wall: float
    stalled: float | None
    """None when the node has no PSI (/proc/pressure/cpu)."""

    @property
    def starved(self) -> bool:
        return self.stalled is not None and self.stalled > STARVED_SHARE

    def describe(self) -> str:
        share = "unknown" if self.stalled is None else f"{self.stalled:.0%}"
        return f"some task waited for a CPU {share} of the batch's {self.wall:.1f} s"


def parse_cpu(output: str) -> CpuTime | None:
    """The batch's CpuTime from its two `@@cpu` lines; None when they are missing."""
    marks = _LINE.findall(output.split("\n@@probe ", 1)[0])
    if len(marks) != 2 or not marks[0][0] or not marks[1][0]:
        return None
    (up0, psi0), (up1, psi1) = marks
    wall = float(up1) - float(up0)
    if wall <= 0:
        return CpuTime(0.0, None)
    stalled = None
    if psi0 and psi1:
        stalled = min(1.0, max(0.0, (int(psi1) - int(psi0)) / 1e6 / wall))
    return CpuTime(wall, stalled)
