"""Which lab made what: owner markers that every sweep checks, so a lab removes only its own.

A lab is its state directory. Its daemon claims its name prefix (`/run/netconform-lab/prefixes/
PREFIX`: state dir and daemon pid) and marks every network namespace it creates
(`/run/netconform-lab/netns/NAME`: the state dir). The links a lab makes live inside its own
namespaces and the processes it starts run in them, so they go with the namespaces: a sweep
kills what still runs in a namespace it owns, then deletes it. A namespace another state dir
marked, or nobody marked, is named and left alone.

The markers live under /run, a tmpfs like /run/netns itself: a reboot clears both together.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from netconform.errors import LabError

RUN_DIR = Path("/run/netconform-lab")
NETNS_MARKERS = RUN_DIR / "netns"
PREFIX_CLAIMS = RUN_DIR / "prefixes"
#: The owner recorded for namespaces of a plan made without a state directory (tests).
NO_STATE_DIR = ""


def owner_of_dir(state_dir: Path) -> str:
    """The owner key of a lab: its state directory, resolved (one per clone, per --state-dir)."""
    return str(state_dir.resolve())


def default_prefix(state_dir: Path) -> str:
    """`n` and 6 hex digits of the state directory's path: two clones never share a prefix,
    and one state directory keeps its prefix across runs."""
    digest = hashlib.sha256(owner_of_dir(state_dir).encode()).hexdigest()
    return f"n{digest[:6]}"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)  # readers never see half a marker


def mark(names: list[str] | tuple[str, ...], owner: str) -> None:
    """Record `owner` as the maker of these namespaces."""
    for name in names:
        _write(NETNS_MARKERS / name, owner)


def unmark(names: list[str]) -> None:
    for name in names:
        (NETNS_MARKERS / name).unlink(missing_ok=True)


def owner_of(name: str) -> str | None:
    """The state directory that made namespace `name`; None when no lab marked it."""
    try:
        return (NETNS_MARKERS / name).read_text()
    except OSError:
        return None


@dataclass(frozen=True)
class Claim:
    """A prefix held by a lab: its state directory and its daemon's pid."""

    prefix: str
    state_dir: str
    pid: int

    @property
    def alive(self) -> bool:
        return daemon_alive(self.pid, Path(self.state_dir))


def read_claim(prefix: str) -> Claim | None:
    try:
        data = json.loads((PREFIX_CLAIMS / prefix).read_text())
        return Claim(prefix, str(data["state_dir"]), int(data["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def claim(prefix: str, owner: str, pid: int) -> None:
    """Hold `prefix` for the lab of `owner` (daemon `pid`); LabError when a live lab of
    another state directory holds it."""
    held = read_claim(prefix)
    if held is not None and held.state_dir != owner and held.alive:
        raise LabError(taken_message(held, owner))
    _write(PREFIX_CLAIMS / prefix, json.dumps({"state_dir": owner, "pid": pid}))


def release(prefix: str, owner: str) -> None:
    """Give `prefix` up, if `owner` holds it."""
    held = read_claim(prefix)
    if held is not None and held.state_dir == owner:
        (PREFIX_CLAIMS / prefix).unlink(missing_ok=True)


def claimed_by(owner: str) -> str | None:
    """The prefix the lab of `owner` holds, if any."""
    try:
        prefixes = sorted(p.name for p in PREFIX_CLAIMS.iterdir() if not p.name.startswith("."))
    except OSError:
        return None
    for prefix in prefixes:
        held = read_claim(prefix)
        if held is not None and held.state_dir == owner:
            return prefix
    return None


def taken_message(held: Claim, owner: str) -> str:
    return (
        f"lab prefix {held.prefix!r} is taken by the running lab of state dir "
        f"{held.state_dir} (daemon pid {held.pid}): stop that lab first "
        f"('netconform-lab --state-dir {held.state_dir} down'), or start this one with "
        f"another --prefix (this state dir's own default is "
        f"{default_prefix(Path(owner)) if owner else 'derived from its path'})"
    )


def split_by_owner(names: list[str], owner: str) -> tuple[list[str], dict[str | None, list[str]]]:
    """(the namespaces `owner` made, every other maker's namespaces: None for unmarked)."""
    own: list[str] = []
    others: dict[str | None, list[str]] = {}
    for name in names:
        maker = owner_of(name)
        if maker == owner:
            own.append(name)
        else:
            others.setdefault(maker, []).append(name)
    return own, others


def describe_others(prefix: str, others: dict[str | None, list[str]]) -> str:
    """`16 of the lab of /a/.lab (daemon pid 12, running): ncl-world, ...` for each maker."""
    parts = []
    for maker, names in others.items():
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        if maker is None:
            who = "no lab's (no owner marker)"
        else:
            held = read_claim(prefix)
            daemon = (
                f"daemon pid {held.pid}, {'running' if held.alive else 'gone'}"
                if held is not None and held.state_dir == maker
                else "daemon gone"
            )
            who = f"the lab of state dir {maker or '<none>'} ({daemon})"
        parts.append(f"{len(names)} of {who}: {shown}")
    return "; ".join(parts)


def daemon_alive(pid: int, state_dir: Path) -> bool:
    """The pid is alive and is the lab daemon of this very state directory.

    A stale record (daemon killed, machine rebooted) may name a pid that now belongs to an
    unrelated process; it must never be mistaken for the lab, let alone signalled.
    """
    if not pid_alive(pid):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        cwd = Path(f"/proc/{pid}/cwd").resolve()
    except OSError:
        return False
    words = [w.decode(errors="replace") for w in argv]
    if "provisioning.lab.daemon" not in words or "--state-dir" not in words:
        return False
    at = words.index("--state-dir") + 1
    named = words[at] if at < len(words) else ""
    return bool(named) and (cwd / named).resolve() == state_dir.resolve()


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:  # reap it first if it is our own child (a zombie still answers kill 0)
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
