"""ConfigMaps and Secrets: string data; a secret's stringData folded into base64 data."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from provisioning.lab.apiserver.errors import bad_value, invalid
from provisioning.lab.apiserver.kinds.base import KindRules
from provisioning.lab.apiserver.model import Obj

if TYPE_CHECKING:
    from provisioning.lab.apiserver.store import Store


def check_string_data(obj: Obj) -> None:
    """`data` and `binaryData` must map keys to strings."""
    for key in ("data", "binaryData"):
        value = obj.get(key)
        if value is not None and not (
            isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
        ):
            raise invalid(obj, bad_value(key, value, "must map keys to strings"))


class ConfigMapRules(KindRules):
    def admit(self, store: Store, obj: Obj, old: Obj | None) -> None:
        check_string_data(obj)


class SecretRules(KindRules):
    def admit(self, store: Store, obj: Obj, old: Obj | None) -> None:
        check_string_data({**obj, "kind": "ConfigMap"})
        data = obj.setdefault("data", {}) or {}
        for key, value in (obj.pop("stringData", None) or {}).items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        obj["data"] = data
        obj.setdefault("type", "Opaque")
