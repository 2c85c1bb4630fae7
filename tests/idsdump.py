"""A pytest plugin for tests/test_ids.py: every collected test's id and its parameters as
Allure shows them (`allure_commons.utils.represent`), written to $NETCONFORM_IDS_OUT."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import pytest
from allure_commons import utils

represent: Callable[[object], str] = utils.represent  # untyped upstream: its signature here


def pytest_collection_finish(session: pytest.Session) -> None:
    out = os.environ.get("NETCONFORM_IDS_OUT")
    if not out:
        return
    rows = []
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        params = {k: represent(v) for k, v in callspec.params.items()} if callspec else {}
        rows.append({"nodeid": item.nodeid, "params": params})
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(rows, handle)
