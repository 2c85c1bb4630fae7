"""What a kind's rules may do: admission and defaulting, and the side effects of a delete."""

from __future__ import annotations

from typing import TYPE_CHECKING

from provisioning.lab.apiserver.model import Obj

if TYPE_CHECKING:
    from provisioning.lab.apiserver.store import Store


class KindRules:
    """The rules of one kind; every hook is a no-op unless a kind overrides it.

    `admit` validates and defaults `obj` in place (raising `ApiError`), with `old` the stored
    version on an update and None on create. `before_delete` runs before the object is dropped
    (a namespace empties itself), `after_delete` after (cascades, released allocations).
    """

    def admit(self, store: Store, obj: Obj, old: Obj | None) -> None:
        """Validate and default `obj` in place."""

    def before_delete(self, store: Store, obj: Obj) -> None:
        """Run before `obj` is deleted."""

    def after_delete(self, store: Store, obj: Obj) -> None:
        """Run after `obj` was deleted."""
