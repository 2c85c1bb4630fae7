"""The one protocol every lab behaviour that reacts to API objects implements, and what the
lab gives it.

A controller is one module with one class, registered in `CONTROLLERS`
(`provisioning/lab/controllers/__init__.py`); it names the kinds it `watches` and gets only
their events. It comes in two flavours of the same shape. A `Controller` is asynchronous: the
daemon starts it with the `LabContext` and delivers events after the API call that caused them
returned (kubelet, kube-proxy, and later LoadBalancer, DNS, ingress, policies, firewall).
A `SettlingController` is synchronous and per cluster: its store calls `observe` at every
commit and `reconcile` until no controller has work left, before the API call returns, so
clients see deployments' pods and services' endpoints at once, as the tests rely on.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from netconform.errors import LabError
from provisioning.lab.apiserver.events import record_event
from provisioning.lab.apiserver.model import Event, Obj
from provisioning.lab.owned_chains import SYNC_PERIOD

if TYPE_CHECKING:
    from provisioning.lab.apiserver.server import LabApiServer
    from provisioning.lab.apiserver.store import Store
    from provisioning.lab.network import LabPlan, NodePlan, RegionPlan

log = logging.getLogger("netconform.lab.controllers")


class Controller(ABC):
    """Asynchronous: started by the daemon, told about events of the kinds it watches.

    `on_event` runs in the cluster's delivery order; slow work belongs in `lab.tasks`, so the
    next event is not held up."""

    name: ClassVar[str]
    watches: ClassVar[frozenset[str]]

    async def start(self, lab: LabContext) -> None:
        """Called once before the API listens; keeps `lab` for later."""
        self.lab = lab

    @abstractmethod
    async def on_event(self, cluster: str, event: Event) -> None:
        """React to one event of a watched kind in `cluster`."""

    async def stop(self) -> None:  # noqa: B027 (optional hook)
        """Undo what can be undone before the network goes (called in reverse order)."""


class SettlingController(ABC):
    """Synchronous, one instance per cluster store: notes work at commit, does it in
    `reconcile`, one item per call, through the store's non-settling mutations."""

    name: ClassVar[str]
    watches: ClassVar[frozenset[str]]

    @abstractmethod
    def observe(self, store: Store, event: Event) -> None:
        """Note the work `event` (of a watched kind) makes; must not mutate the store."""

    @abstractmethod
    def reconcile(self, store: Store) -> bool:
        """Do one noted item; False when nothing was left to do."""


class WorkQueueController(SettlingController):
    """A settling controller whose work is objects by (namespace, name), as an upstream
    controller's work queue (client-go `util/workqueue`: a key queued twice while waiting is
    processed once): `keys` names the objects an event touches, `sync` brings one to its
    desired state (it reads the object again; it may be gone)."""

    def __init__(self) -> None:
        self._dirty: set[tuple[str, str]] = set()

    @abstractmethod
    def keys(self, store: Store, event: Event) -> set[tuple[str, str]]:
        """(namespace, name) of every object `event` gives work to; must not mutate."""

    @abstractmethod
    def sync(self, store: Store, namespace: str, name: str) -> None:
        """Bring one object (maybe deleted since) to its desired state."""

    def observe(self, store: Store, event: Event) -> None:
        self._dirty |= self.keys(store, event)

    def reconcile(self, store: Store) -> bool:
        if not self._dirty:
            return False
        self.sync(store, *self._dirty.pop())
        return True


ControllerClass = type[Controller] | type[SettlingController]
FaultMaker = tuple[int, Callable[..., Callable[[], None]]]


# -- shared runtime facilities -----------------------------------------------------------------


@dataclass
class PodState:
    """What the kubelet made for one pod, so it can be undone exactly."""

    cluster: str
    namespace: str
    name: str
    node: NodePlan
    netns: str
    dev: str
    ip: str
    spec: Obj
    labels: dict[str, str] = field(default_factory=dict)
    """The pod's labels when it started (the echo server reports its `track`)."""
    serving: list[int] = field(default_factory=list)
    """TCP ports a pod hook listens on (the echo servers)."""
    log: list[str] = field(default_factory=list)
    previous_log: list[str] | None = None
    """The log of the container before its last restart (`kubectl logs --previous`)."""
    execs: int = 0
    holder_pid: int = 0
    """The process holding the pod's hostname and filesystem view (0 until it runs)."""
    """Exec sessions run in this pod (the suite promises one per source pod per batch)."""
    started: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once wiring finished (or failed): a stop waits for it before unwiring."""


class PodTable(dict[tuple[str, str, str], PodState]):
    """The pods the kubelet runs, by (cluster, namespace, name)."""

    def by_name(self, name: str) -> PodState:
        """A pod by `cluster/name`, `namespace/name` or a name unique across the lab."""
        matches = [
            p
            for p in self.values()
            if name in (p.name, f"{p.cluster}/{p.name}", f"{p.namespace}/{p.name}")
        ]
        if len(matches) != 1:
            what = "no pod" if not matches else f"{len(matches)} pods"
            raise LabError(f"{what} named {name!r} in the lab (use cluster/pod)")
        return matches[0]


class PodHook(Protocol):
    """What runs inside a pod's namespace (an image's behaviour), driven by the kubelet."""

    async def pod_started(self, state: PodState) -> None:
        """The namespace is wired; runs before the pod is reported Running."""

    def pod_stopping(self, state: PodState) -> None:
        """The pod is going; runs before its namespace is removed."""


class Tasks:
    """Background work of the controllers, logged when it fails, awaited at teardown."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run `coro` in the background."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("controller task failed: %s", task.exception())

    async def wait(self, timeout: float) -> None:
        """Let the work in flight finish (at most `timeout` seconds)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)


@dataclass
class LabContext:
    """What a controller may use: the plan, the API server's stores, the running pods, hooks
    into pods, background tasks, and processes run in pods."""

    plan: LabPlan
    api: LabApiServer
    pods: PodTable = field(default_factory=PodTable)
    pod_hooks: list[PodHook] = field(default_factory=list)
    tasks: Tasks = field(default_factory=Tasks)
    procs: set[asyncio.subprocess.Process] = field(default_factory=set)
    policy_off: set[str] = field(default_factory=set)
    """Clusters whose NetworkPolicy enforcement a fault stopped (`policy-off`)."""
    resync_hooks: list[Callable[[str], None]] = field(default_factory=list)
    """Called (from a fault's thread) with a cluster whose faults changed: each re-renders
    what it programs there and returns when that is done."""
    faults: dict[str, FaultMaker] = field(default_factory=dict)
    """Faults controllers contribute to the FaultBook: name -> (arity, make); `make` runs in
    a worker thread and returns the undo."""
    sync_period: float = SYNC_PERIOD
    """Seconds between the full resyncs of the controllers that own iptables chains."""
    state_dir: Path | None = None
    """The lab's state directory (controllers keep their files in a folder of their own
    there; None: a controller that needs one makes a temporary directory)."""

    def store(self, cluster: str) -> Store:
        """The API objects of `cluster`."""
        return self.api.stores[cluster]

    def record_event(
        self, cluster: str, obj: Obj, reason: str, message: str, component: str,
        type_: str = "Normal",
    ) -> None:  # fmt: skip
        """Record a core/v1 Event about `obj` (`kubectl describe` shows it)."""
        record_event(self.store(cluster), obj, reason, message, component, type_)

    def region(self, cluster: str) -> RegionPlan:
        """The region (network plan) behind `cluster`."""
        return self.plan.region(cluster)

    async def close(self, timeout: float) -> None:
        """End processes run in pods, then let background work finish."""
        for proc in list(self.procs):
            if proc.returncode is None:
                proc.kill()
        await self.tasks.wait(timeout)
