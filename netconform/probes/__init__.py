"""Probe kinds, one module each, found and registered on import (a new kind is a new module).

`kind("icmp")` returns the registered kind; `netconform.probes.batch` runs them.
"""

from __future__ import annotations

import importlib
import pkgutil

from netconform.probes.base import Invocation, Observation, Probe, ProbeKind, Task, kind, kinds

_INFRASTRUCTURE = frozenset({"base", "batch"})

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _INFRASTRUCTURE:
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Invocation", "Observation", "Probe", "ProbeKind", "Task", "kind", "kinds"]
