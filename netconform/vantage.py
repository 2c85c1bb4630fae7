"""Where a probe runs from: one interface, `run(argv) -> CommandResult` (testinfra style)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from netconform.command import CommandResult
from netconform.topology import Timeouts, Topology

if TYPE_CHECKING:
    from netconform.cluster import ClusterClient


class Vantage(Protocol):
    """A place commands run: a pod (through the API) or the runner."""

    name: str

    def run(self, argv: Sequence[str], stdin: str | None = None) -> CommandResult:
        """Run argv there; never through a shell string built from data."""
        ...


class RunnerVantage:
    """This machine, optionally inside a network namespace (the lab's world)."""

    def __init__(
        self, netns: str | None = None, name: str = "runner", timeout: float = Timeouts.exec
    ):
        self.netns = netns
        self.name = name
        self.timeout = timeout

    @classmethod
    def of(cls, topology: Topology) -> RunnerVantage:
        """The topology's runner: its network namespace, one batch bounded by the named
        `exec` timeout (as a pod's exec is)."""
        return cls(topology.runner_netns, timeout=topology.timeouts.exec)

    def run(self, argv: Sequence[str], stdin: str | None = None) -> CommandResult:
        argv = list(argv)
        if shutil.which(argv[0]) is None and "/" not in argv[0]:
            return CommandResult(tuple(argv), 127, "", f"{argv[0]}: not found", self.name)
        full = ["ip", "netns", "exec", self.netns, *argv] if self.netns else argv
        try:
            proc = subprocess.run(
                full, input=stdin, capture_output=True, text=True, timeout=self.timeout, check=False
            )
        except subprocess.TimeoutExpired:
            return CommandResult(
                tuple(argv), 124, "", f"timed out after {self.timeout:g}s", self.name
            )
        return CommandResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr, self.name)


class PodVantage:
    """A pod, reached with exec through the cluster's API server."""

    def __init__(self, cluster: ClusterClient, namespace: str, pod: str, container: str = ""):
        self.cluster = cluster
        self.namespace = namespace
        self.pod = pod
        self.container = container
        self.name = f"{cluster.name}/{pod}"

    def run(self, argv: Sequence[str], stdin: str | None = None) -> CommandResult:
        return self.cluster.exec(
            self.namespace, self.pod, argv, stdin=stdin, container=self.container
        )
