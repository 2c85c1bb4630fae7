"""Pre-change gating on the lab, as issue 14's "Done when" says: a healthy run's outcome file
as baseline; the same run again passes against it; after `firewall-close east west 9092` the
run fails listing exactly that regression first; `loss east west 20` flags loss (and latency)
drift on that pair only; a baseline from a 9-region lab is refused against a 3-region run in
one line. Then the faulted run's HTML report in headless Chromium with the network off: the
heatmap and the failed pair are visible, no URL outside the report is requested, and no
secret is in any file of the report or the outcome file. Screenshots land in
reports/out/screenshots/ for a person to look at."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioning.lab import control, network
from provisioning.lab.control import LabPaths
from reports import outcome
from tests.chromium import Browser, BrowserError
from tests.labrun import REPO, SuiteRun, run_suite

SCREENSHOTS = REPO / "reports" / "out" / "screenshots"
FAKE_CLOUD_KEY = "FAKEnetconformCloudKey0123456789abcdef"
PAIR = {"east->west", "west->east"}
#: seconds from Ctrl-C to the process's end: the probes in flight finish (exec timeouts),
#: the session's teardown and the outcome file, nothing queued
INTERRUPT_ENDS_WITHIN = 90


def suite_run(lab: LabPaths, tmp: Path, *args: str, env: dict[str, str] | None = None) -> SuiteRun:
    return run_suite(["suites", "--topology", str(lab.topology), *args], tmp, timeout=600, env=env)


def section(run: SuiteRun) -> list[str]:
    """The `netconform baseline` section of a run's terminal output."""
    lines = run.output.splitlines()
    start = next(i for i, ln in enumerate(lines) if "netconform baseline" in ln)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("====="))
    return lines[start + 1 : end]


@pytest.fixture(scope="module")
def healthy(lab: LabPaths, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The baseline: a healthy full run's outcome file."""
    tmp = tmp_path_factory.mktemp("baseline")
    path = tmp / "healthy.json"
    run = suite_run(lab, tmp, "--outcome", str(path))
    assert run.rc == 0, run.output[-3000:]
    document = outcome.read(path)
    assert document["status"] == "passed" and document["profile"] == "full"
    return path


@pytest.fixture
def healed(lab: LabPaths) -> Iterator[LabPaths]:
    yield lab
    control.call(lab, "POST", "/heal", {})


def test_the_same_healthy_run_passes_against_its_baseline(
    lab: LabPaths, healthy: Path, tmp_path: Path
) -> None:
    run = suite_run(
        lab, tmp_path, "--baseline", str(healthy), "--outcome", str(tmp_path / "o.json")
    )
    assert run.rc == 0, "\n".join(section(run)) + run.output[-2000:]
    assert ": 0 regression(s), " in section(run)[0]
    assert not any(ln.startswith("REGRESSION") for ln in section(run))


def test_smoke_keeps_every_region_pair_and_skips_only_what_it_leaves_out(
    lab: LabPaths, healthy: Path, tmp_path: Path
) -> None:
    path = tmp_path / "smoke.json"
    run = suite_run(lab, tmp_path, "--profile", "smoke", "--outcome", str(path), "-rs")
    assert run.rc == 0, run.output[-3000:]
    smoke, full = outcome.read(path), outcome.read(healthy)
    assert smoke["profile"] == "smoke" and "profile smoke" in run.output
    skipped = {k for k, v in run.outcomes.items() if v == "skipped"}
    left_out = {k for k in skipped if "not in the smoke profile" in run.messages[k]}
    skipped_in_full = {
        t["id"].partition("[")[2].rstrip("]") for t in full["tests"] if t["outcome"] == "skipped"
    }
    assert skipped - left_out <= skipped_in_full  # nothing else is lost
    middle = {f"{r}/step-{n}" for r in ("central", "east", "west") for n in (2, 3, 4)}
    stars = {k.rsplit("-", k.count("-") - 1)[0] for k in left_out if "/step-" in k}
    assert stars == middle, left_out
    assert {f"{r}/canary.example:weight" for r in ("central", "east", "west")} <= left_out
    count = {d["profile"]: sum(len(c["cases"]) for c in d["checks"]) for d in (smoke, full)}
    assert count["smoke"] < count["full"] / 3, count
    pod_to_pod = next(c for c in smoke["checks"] if c["id"] == "pod-to-pod")
    assert len({c["slice"] for c in pod_to_pod["cases"]}) == 9  # every region pair, one pair


@pytest.fixture(scope="module")
def faulted(lab: LabPaths, healthy: Path, tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    """`firewall-close east west 9092`, run with the baseline, the HTML report and a planted
    fake cloud key in the environment."""
    out = REPO / "reports" / "out" / "selftest-faulted"
    control.call(
        lab, "POST", "/fault", {"name": "firewall-close", "args": ["east", "west", "9092"]}
    )
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKE0001",
        "AWS_SECRET_ACCESS_KEY": FAKE_CLOUD_KEY,
    }
    try:
        run = suite_run(
            lab,
            tmp_path_factory.mktemp("faulted"),
            "--baseline",
            str(healthy),
            "--outcome",
            str(out / "outcome.json"),
            "--alluredir",
            str(out / "allure-results"),
            "--clean-alluredir",
            "--allure-html",
            str(out / "html"),
            env=env,
        )
    finally:
        control.call(lab, "POST", "/heal", {})
    return run


def test_a_closed_port_fails_the_run_with_exactly_that_regression_first(faulted: SuiteRun) -> None:
    assert faulted.rc == 1, faulted.output[-3000:]
    lines = section(faulted)
    groups = [ln for ln in lines if ln.startswith("REGRESSION ")]
    assert lines[1].startswith("REGRESSION firewall east->west:9092: 4 case(s)"), lines[:3]
    assert [g.split(":", 2)[0] + ":" + g.split(":", 2)[1] for g in groups] == [
        "REGRESSION firewall east->west:9092",
        "REGRESSION firewall west->east:9092",
        # the lab-as-cloud audit reads the firewall's own chain: its port cases regress too
        "REGRESSION cloud suites/cloud/test_cloud_preflight.py:",
        "REGRESSION cloud suites/cloud/test_cloud_preflight.py:",
    ]
    cloud = [g.split("::", 1)[1] for g in groups if " cloud " in g]
    assert [c.split("]", 1)[0] for c in cloud] == [
        "test_port_open[lab:east->west:9092",
        "test_port_open[lab:west->east:9092",
    ], groups
    assert faulted.failed() == {
        "east->west:9092", "west->east:9092", "lab:east->west:9092", "lab:west->east:9092"
    }  # fmt: skip
    # regressions come before pytest's own failure sections, and the report's path is last
    assert faulted.output.index("netconform baseline") < faulted.output.index("= FAILURES =")
    last = faulted.output.rstrip().splitlines()[-1]
    assert last.startswith("netconform: HTML report: ") and "outcome file: " in last


def test_loss_is_flagged_as_drift_on_that_pair_only(
    healed: LabPaths, healthy: Path, tmp_path: Path
) -> None:
    control.call(healed, "POST", "/fault", {"name": "loss", "args": ["east", "west", "20"]})
    run = suite_run(
        healed, tmp_path, "--baseline", str(healthy), "--outcome", str(tmp_path / "o.json")
    )
    drift = [ln.removeprefix("DRIFT ") for ln in section(run) if ln.startswith("DRIFT ")]
    loss = {ln.split(" ")[0] for ln in drift if " loss rate: " in ln}
    assert loss and loss <= PAIR, "\n".join(section(run))  # each direction: 19 times in 20
    assert {ln.split(" ")[0] for ln in drift} <= PAIR, "\n".join(drift)
    regressions = [ln for ln in section(run) if ln.startswith("REGRESSION ")]
    assert regressions, "\n".join(section(run))
    elsewhere = [ln for ln in regressions if not re.search(r"(east->west|west->east)", ln)]
    assert not elsewhere, "\n".join(section(run))


def test_a_nine_region_baseline_is_refused_in_one_line(
    lab: LabPaths, tmp_path: Path, healthy: Path
) -> None:
    prefix = f"ncn{os.getpid() % 100000}"
    nine = LabPaths(tmp_path / "lab9")
    control.up(nine, regions=9, prefix=prefix, owner_pid=os.getpid())
    try:
        args = ["suites/dns/test_dns_lb.py", "-k", "stub_audit", "--topology", str(nine.topology)]
        run = run_suite([*args, "--outcome", str(tmp_path / "nine.json")], tmp_path)
        assert run.rc == 0, run.output[-2000:]
    finally:
        control.down(nine, prefix=prefix)
        assert not network.list_netns(prefix)
    refused = suite_run(lab, tmp_path, "--baseline", str(tmp_path / "nine.json"))
    assert refused.rc == 12, refused.output[-2000:]
    errors = [ln for ln in refused.stderr.splitlines() if ln.strip()]
    assert len(errors) == 1 and "is of another topology" in errors[0], refused.stderr
    assert "9 cluster(s)" in errors[0] and "Traceback" not in refused.output
    assert "building lab" not in refused.output  # refused before anything is built


def test_an_interrupted_run_still_writes_its_outcome_file(lab: LabPaths, tmp_path: Path) -> None:
    """SIGINT (Ctrl-C) while the suite runs: the file is there, valid, `interrupted`."""
    path = tmp_path / "o.json"
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "suites",
        "--topology",
        str(lab.topology),
        "--outcome",
        str(path),
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # SIGINT as the first cluster-ip test starts
    proc = subprocess.Popen(
        argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
    )
    assert isinstance(proc.stdout, io.BufferedReader)  # read1: what has come so far
    seen = b""
    while b"suites/cluster_ip" not in seen:  # the cloud tests are done, the probes are running
        chunk = proc.stdout.read1(4096)
        assert chunk, seen.decode(errors="replace")[-2000:]
        seen += chunk
    proc.send_signal(signal.SIGINT)
    interrupted = time.monotonic()
    try:
        seen += proc.communicate(timeout=300)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        seen += proc.communicate()[0]
        pytest.fail(f"still running 300s after SIGINT:\n{seen.decode(errors='replace')[-3000:]}")
    took = time.monotonic() - interrupted
    print(f"exit {took:.1f}s after SIGINT")
    assert proc.returncode == 2, seen.decode(errors="replace")[-2000:]
    # the checks measured in the background stop too: queued ones never start, waits give up
    assert took < INTERRUPT_ENDS_WITHIN, seen.decode(errors="replace")[-2000:]
    document = outcome.read(path)
    assert document["status"] == "interrupted" and document["exit_status"] == 2
    assert any(t["outcome"] == "passed" for t in document["tests"])


def _visible_image(browser: Browser, name: str) -> bool:
    """Open the global attachment `name`, wait until its image is drawn, scroll it into view
    (as a person would) for the screenshot."""
    before = browser.evaluate("[...document.images].map(i => i.src)")
    assert browser.click_text(name), name
    new = f"[...document.images].filter(i => !{json.dumps(before)}.includes(i.src))"
    drawn = browser.wait_for(
        f"{new}.some(i => i.naturalWidth > 300 && i.getBoundingClientRect().height > 200)",
        15,
        "attachment_image",
    )
    browser.evaluate(f"{new}[0].scrollIntoView({{block: 'center'}})")
    return bool(drawn)


def test_the_report_in_chromium_offline_shows_the_heatmap_and_the_failed_pair(
    faulted: SuiteRun,
) -> None:
    index = REPO / "reports" / "out" / "selftest-faulted" / "html" / "index.html"
    try:
        browser = Browser(network=False)
    except BrowserError as err:
        pytest.fail(f"{err}")
    with browser:
        browser.open(index.as_uri())
        browser.wait_for(
            "document.body && document.body.innerText.includes('Global Attachments')",
            60,
            "report_loaded",
        )
        browser.screenshot(SCREENSHOTS / "overview.png")
        assert browser.click_text("Global Attachments")
        browser.wait_for("document.body.innerText.includes('firewall: passed/run')", 15, "tab")
        assert _visible_image(browser, "firewall: passed/run per region pair")
        browser.screenshot(SCREENSHOTS / "firewall-heatmap.png")
        assert _visible_image(browser, "topology: worst outcome between regions")
        browser.screenshot(SCREENSHOTS / "topology.png")
        browser.open(index.as_uri())
        browser.wait_for(
            "document.body && document.body.innerText.includes('Failed')", 60, "report_reloaded"
        )
        assert browser.click_text("Failed")
        browser.wait_for(
            "document.body.innerText.includes('test_firewall[east->west:9092]')",
            15,
            "failed_pair_listed",
        )
        browser.screenshot(SCREENSHOTS / "failed-tests.png")
        assert browser.click_text("test_firewall[east->west:9092]")
        text = browser.wait_for(
            "document.body.innerText.includes('likely cause') && document.body.innerText",
            15,
            "failed_test_page",
        )
        browser.screenshot(SCREENSHOTS / "failed-pair.png")
        assert "Regression (passed in the baseline)" in text
        first = text.index("likely cause")
        assert first < text.index("expected ALLOW observed TIMEOUT")  # the cause first
        outside = [
            u for u in browser.requests if not u.startswith(("file:", "data:", "blob:", "about:"))
        ]
        assert outside == [], outside
        assert browser.requests and browser.requests[0] == index.as_uri()


def test_no_secret_in_any_file_of_the_report_or_the_outcome(
    faulted: SuiteRun, lab: LabPaths
) -> None:
    state = control.read_state(lab)
    assert state is not None
    kubeconfig = lab.kubeconfig.read_text()
    lab_secret = re.search(r"/s/([A-Za-z0-9_-]{16,})", kubeconfig)
    token = re.search(r"token: (\S+)", kubeconfig)
    assert lab_secret and token
    needles = [lab_secret.group(1), str(state["token"]), FAKE_CLOUD_KEY]
    #: the lab's bearer token is a short word (`admin`): searched for as a credential
    credential = re.compile(rf"(?i)(bearer\s+|token[\"':= ]+){re.escape(token.group(1))}\b")
    out = REPO / "reports" / "out" / "selftest-faulted"
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "index.html" for p in files) and any(p.suffix == ".png" for p in files)
    found = []
    for path in files:
        data = path.read_bytes().decode("utf-8", errors="replace")
        found += [(path.name, n[:6]) for n in needles if n in data]
        if credential.search(data):
            found.append((path.name, "token"))
    assert found == []
    assert "redacted" not in faulted.output  # nothing had to be scrubbed: no source leaks one
