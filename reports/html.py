"""Offline HTML from Allure results with the Allure 3 CLI (npm package `allure`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

#: Where `./run setup` installs the CLI (npm --prefix); PATH is searched too.
LOCAL_CLI = Path(".tools/npm/node_modules/.bin/allure")
GENERATE_TIMEOUT = 300.0


def find_cli() -> str | None:
    if LOCAL_CLI.exists():
        return str(LOCAL_CLI)
    return shutil.which("allure")


def generate(results: Path, out: Path) -> str:
    """Write one self-contained index.html into `out`; returns a line for the terminal."""
    cli = find_cli()
    if cli is None:
        return (
            f"warning: Allure CLI not found ({LOCAL_CLI} or PATH): no HTML report; "
            "install it with: npm install --prefix .tools/npm allure@3"
        )
    if not results.is_dir():
        return f"warning: no Allure results in {results}: no HTML report"
    out.mkdir(parents=True, exist_ok=True)
    argv = [cli, "generate", str(results), "--output", str(out)]
    config = Path("allurerc.mjs")
    if config.exists():
        argv += ["--config", str(config)]
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=GENERATE_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        return f"warning: allure generate took over {GENERATE_TIMEOUT:g}s: no HTML report"
    index = out / "index.html"
    if proc.returncode != 0 or not index.exists():
        last = (proc.stderr or proc.stdout).strip().splitlines()
        return f"warning: allure generate failed: {last[-1] if last else proc.returncode}"
    return f"HTML report: {index}"
