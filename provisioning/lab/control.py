"""Find, start, steer and stop a running lab daemon from another process.

The daemon writes `<state-dir>/state.json` once it serves; everything here reads that file and
talks to the daemon's control endpoint on loopback.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netconform import redact
from netconform.errors import LabError, WaitTimeoutError
from netconform.topology import Timeouts, load_topology
from netconform.waits import wait_until
from provisioning.lab import network, ownership
from provisioning.lab.owned_chains import SYNC_PERIOD

#: Where the code this process runs lives (a checkout's root, or site-packages). The daemon is
#: started there, so `python -m provisioning.lab.daemon` imports this very code, whatever the
#: caller's working directory holds.
CODE_ROOT = Path(__file__).resolve().parents[2]


def project_state_dir() -> Path:
    """`<checkout>/.lab` when running from a source checkout; else `.lab` in the cwd."""
    if (CODE_ROOT / "pyproject.toml").is_file():
        return CODE_ROOT / ".lab"
    return Path(".lab")


DEFAULT_STATE_DIR = project_state_dir()
CONTROL_TIMEOUT = 30.0
STOP_TIMEOUT = 60.0
TOKEN_HEADER = "X-Netconform-Lab-Token"


@dataclass(frozen=True)
class LabPaths:
    """Files of one lab's state directory."""

    root: Path

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def topology(self) -> Path:
        return self.root / "topology.yaml"

    @property
    def log(self) -> Path:
        return self.root / "daemon.log"


def read_state_file(paths: LabPaths) -> dict[str, Any] | None:
    """state.json as written, whether or not its daemon still lives."""
    try:
        state: dict[str, Any] = json.loads(paths.state.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict):
        return None
    redact.register([str(state.get("token", ""))])  # the lab's secret: never printed
    return state


def read_state(paths: LabPaths) -> dict[str, Any] | None:
    """The running lab's state, or None when no daemon of this state dir is alive."""
    state = read_state_file(paths)
    if state is None or not ownership.daemon_alive(int(state.get("pid", 0)), paths.root):
        return None
    return state


def call(paths: LabPaths, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """One JSON request to the daemon's control endpoint; LabError on any failure."""
    state = read_state(paths)
    if state is None:
        raise LabError(f"no lab is running for {paths.root} (start one: netconform-lab up)")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"http://127.0.0.1:{state['control_port']}{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json", TOKEN_HEADER: str(state.get("token", ""))},
    )
    try:
        with urllib.request.urlopen(request, timeout=CONTROL_TIMEOUT) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            message = json.loads(raw or b"{}").get("error", err.reason)
        except ValueError:
            message = f"HTTP {err.code} {err.reason}: {raw[:200].decode(errors='replace')}"
        raise LabError(str(message)) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
        raise LabError(f"lab daemon does not answer on its control port: {err}") from None


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError(
            "the lab needs root to create network namespaces: run as root, or inside "
            "'unshare --user --map-root-user --net --mount'"
        )


def default_prefix(paths: LabPaths) -> str:
    """The prefix of this state dir's lab unless told otherwise: derived from its path, so two
    clones (two state dirs) never build labs with the same names."""
    return ownership.default_prefix(paths.root)


def up(
    paths: LabPaths,
    regions: int = 3,
    prefix: str | None = None,
    timeout: float = Timeouts.lab_up,
    progress: Callable[[str], None] = lambda _msg: None,
    owner_pid: int = 0,
    layout: str = "default",
    sync_period: float = SYNC_PERIOD,
    names: tuple[str, ...] = (),
    nodes: int = network.NODES_PER_REGION,
    vpcs: tuple[str, ...] = (),
    services: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Start the lab daemon (unless one runs) and wait until every cluster answers.

    `timeout` is the named wait `lab_up` (the topology's `timeouts.lab_up`). With `owner_pid`
    the daemon stops by itself when that process is gone. Without `prefix`, the state dir's
    own (`default_prefix`). `sync_period` is kube-proxy's full-resync period (seconds).
    Default layout, for a build: `names` of the regions instead of central, east, ...;
    `nodes` per region; each region's VPC (`vpcs`) and service range (`services`).
    """
    state = read_state(paths)
    if state is not None:
        progress(f"lab already running (pid {state['pid']}, prefix {state['prefix']})")
        return state
    prefix = prefix or default_prefix(paths)
    check_prefix(prefix)
    require_root()
    network.check_tools()
    network.check_free(prefix, ownership.owner_of_dir(paths.root))  # whose, if taken
    if paths.root.exists() and not paths.root.is_dir():
        raise LabError(f"lab state dir {paths.root} exists and is not a directory")
    paths.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths.root.chmod(0o700)  # kubeconfig and state.json carry the lab's secret
    paths.state.unlink(missing_ok=True)
    argv = [
        sys.executable,
        "-m",
        "provisioning.lab.daemon",
        "--state-dir",
        str(paths.root.resolve()),
        "--prefix",
        prefix,
        "--regions",
        str(regions),
        "--owner-pid",
        str(owner_pid),
        "--layout",
        layout,
        "--sync-period",
        f"{sync_period:g}",
        "--nodes",
        str(nodes),
    ]
    for flag, words in (("--names", names), ("--vpcs", vpcs), ("--services", services)):
        if words:
            argv += [flag, ",".join(words)]
    with paths.log.open("ab") as logfile:
        proc = subprocess.Popen(  # the daemon outlives this process on purpose
            argv,
            stdin=subprocess.DEVNULL,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=CODE_ROOT,
        )
    what = f"{regions} regions" if layout == "default" else f"layout {layout}"
    progress(f"building lab: {what}, prefix {prefix}, pid {proc.pid}")
    started = time.monotonic()

    def ready() -> dict[str, Any] | None:
        if proc.poll() is not None:
            raise LabError(f"lab daemon exited with {proc.returncode}: {_last_line(paths.log)}")
        return read_state(paths)

    try:
        state = wait_until(ready, timeout=timeout, name="lab_up", interval=0.1)
    except WaitTimeoutError:
        _stop_child(proc)
        raise LabError(f"lab not ready within {timeout:g}s (lab_up); see {paths.log}") from None
    except BaseException:  # Ctrl-C while building: the half-built lab goes too
        _stop_child(proc)
        raise
    progress(f"lab up in {time.monotonic() - started:.1f}s: kubeconfig {paths.kubeconfig}")
    if layout == "default":
        seed_dns(paths, progress)
    else:  # seed 000's stubs forward to pod IPs, which overlap here
        progress(f"stub domains: not seeded (layout {layout}: the clusters are not peered)")
    return state


def seed_dns(paths: LabPaths, progress: Callable[[str], None]) -> None:
    """Seed 000's stub domains, as `netconform-kube apply` makes them: every cluster's
    `kube-dns-lb` internal LoadBalancer, then every other region's zone -> that address."""
    from netconform import dnsglue  # it needs the kubernetes client: loaded late

    out = io.StringIO()
    dnsglue.run(load_topology(paths.topology), True, "lb", out, dnsglue.LB_READY)
    progress(f"stub domains: {out.getvalue().splitlines()[-1]}")


def _stop_child(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the daemon (it removes what it built) and wait for it to finish."""
    proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def check_prefix(prefix: str) -> None:
    """Lab prefixes are short and dash-free, so `ncl-*` never matches another lab's `ncl2-*`."""
    if not re.fullmatch(r"[a-z][a-z0-9]{0,7}", prefix):
        raise LabError(f"lab prefix {prefix!r}: expected 1-8 lowercase letters/digits, no dash")


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    return lines[-1] if lines else "no log"


@dataclass(frozen=True)
class Sweep:
    """What `down` removed, and what it found and left alone."""

    prefix: str
    removed: list[str]
    """Namespaces of this lab a daemon that was gone had left behind (swept here)."""
    left_alone: dict[str | None, list[str]]
    """Namespaces named PREFIX-* of another lab (by state dir; None: no lab's marker)."""

    def summary(self) -> str:
        line = f"lab down ({len(self.removed)} leftover namespace(s) swept)"
        if self.left_alone:
            others = ownership.describe_others(self.prefix, self.left_alone)
            line += f"; left alone, not this lab's: {others}"
        return line


def down(paths: LabPaths, prefix: str | None = None, timeout: float = 60.0) -> Sweep:
    """Stop the daemon (it removes its namespaces), sweep what a crashed one of this state dir
    left, and remove the state dir's files of that lab (state, kubeconfig, topology).

    Only namespaces marked as this state dir's are touched; others are named in the result.
    """
    owner = ownership.owner_of_dir(paths.root)
    recorded = read_state_file(paths)
    if recorded is not None:  # a crashed daemon's state still knows its prefix
        prefix = str(recorded.get("prefix", prefix))
    prefix = prefix or ownership.claimed_by(owner) or default_prefix(paths)
    check_prefix(prefix)
    state = read_state(paths)
    if state is not None:
        prefix = state["prefix"]
        pid = int(state["pid"])
        try:
            call(paths, "POST", "/down", {})
        except LabError:
            os.kill(pid, 15)
        try:
            wait_until(lambda: not ownership.pid_alive(pid), timeout=timeout, name="lab_down")
        except WaitTimeoutError:
            os.kill(pid, 9)
    swept = network.destroy(prefix, owner)
    ownership.release(prefix, owner)
    for stale in (paths.state, paths.kubeconfig, paths.topology):
        stale.unlink(missing_ok=True)  # nothing points at a lab that no longer exists
    return Sweep(prefix, swept, network.others(prefix, owner))
