"""Smoke subsets of a scenario; the report's figures and the terminal's grids from records;
secrets found and scrubbed; the analytics tag removed from a real Allure 3 report."""

from __future__ import annotations

import json
import struct
import uuid
from pathlib import Path

import pytest

from netconform.outcomes import Endpoint, pod
from netconform.probes import Probe
from netconform.profiles import first_source_per_cluster, one_pair_per_region_pair
from netconform.scenario import Scenario
from netconform.vantage import Vantage
from reports import figures, html, secrets, terminal

PODS = [
    pod(c, f"probe-{j}-{k}", f"10.{i}.{j}.{k}")
    for i, c in enumerate(("central", "east", "west"))
    for j in range(2)
    for k in range(2)
]


def scenario() -> Scenario:
    vantages: dict[Endpoint, Vantage] = {p: None for p in PODS}  # type: ignore[misc]
    return Scenario(vantages, PODS, [Probe("icmp"), Probe("tcp", 8080)])


def test_smoke_keeps_one_pod_pair_per_region_pair_with_every_probe() -> None:
    smoke = one_pair_per_region_pair(scenario())
    tasks = smoke.tasks()
    pairs = [(s, t.destination) for s, ts in tasks.items() for t in ts]
    regions = {(s.cluster, d.cluster) for s, d in pairs}
    assert len(regions) == 9 and len(pairs) == 18  # 9 region pairs x (icmp, tcp)
    assert all(s != d for s, d in pairs)
    assert {s.name for s in tasks} == {"probe-0-0"}
    assert sum(len(ts) for ts in scenario().tasks().values()) == 12 * 11 * 2


def test_smoke_first_source_per_cluster() -> None:
    tasks = first_source_per_cluster(scenario()).tasks()
    assert sorted((s.cluster, s.name) for s in tasks) == [
        ("central", "probe-0-0"),
        ("east", "probe-0-0"),
        ("west", "probe-0-0"),
    ]


def record(check: str, failing: str = "") -> dict[str, object]:
    cases = []
    for a in ("central", "east", "west"):
        for b in ("central", "east", "west"):
            for i in range(3):
                ok = f"{a}->{b}" != failing
                cases.append(
                    {
                        "id": f"{a}->{b}: {i}",
                        "slice": f"{a}->{b}",
                        "pair": f"{a}->{b}",
                        "source": f"{a}/p{i} (10.0.0.{i})",
                        "destination": f"{b}/q (10.1.0.1)",
                        "verdict": "ALLOW" if ok else "TIMEOUT",
                        "passed": ok,
                        "numbers": {"ping_sent": 3, "ping_received": 3 if ok else 0},
                        "samples": {"rtt_ms": [0.05, 0.06, 0.07]},
                    }
                )
    return {"id": check, "cases": cases}


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_figures_are_pngs_that_fit_a_screen() -> None:
    regions = ["central", "east", "west"]
    broken = record("pod-to-pod", failing="east->west")
    for image in (
        figures.check_heatmap(broken, regions),
        figures.loss_rtt([broken], regions),
        figures.topology([broken], regions),
        figures.truth_tables(record("network-policy")),
    ):
        assert image is not None
        width, height = png_size(image)
        assert 200 < width <= 1600 and 150 < height <= 1000, (width, height)
    assert figures.shares(broken) is None  # no shares measured: no figure
    canary = {
        "id": "canary",
        "cases": [
            {
                "id": f"east->east: r{i}",
                "passed": i != 2,
                "verdict": "ALLOW",
                "numbers": {
                    "share": 0.2 + 0.1 * i,
                    "share_low": 0.15 + 0.1 * i,
                    "share_high": 0.25 + 0.1 * i,
                },
                "expected_numbers": {"share_low": 0.1, "share_high": 0.3},
            }
            for i in range(3)
        ],
    }
    image = figures.shares(canary)
    assert image is not None and 200 < png_size(image)[0] <= 1600


def test_the_terminal_grid_marks_the_failed_pair() -> None:
    lines = terminal.grids([record("pod-to-pod", failing="east->west")], width=100)
    text = "\n".join(lines)
    assert "passed/run, every check" in text and "passed/run, pod-to-pod" in text
    east = next(ln for ln in lines if ln.lstrip("│ ").startswith("east ") and "X" in ln)
    assert "0/3 X" in east
    assert "ping loss %" in text and "100.0" in text


KUBECONFIG = """
clusters:
- name: c
  cluster: {server: "http://127.0.0.1:1/s/theLabSecretValue123"}
users:
- name: u
  user: {token: "bearer-token-abcdefgh", client-key-data: "S0VZS0VZS0VZ"}
"""


def test_secrets_are_found_and_scrubbed(tmp_path: Path) -> None:
    found = secrets.kubeconfig_secrets(KUBECONFIG)
    assert {"theLabSecretValue123", "bearer-token-abcdefgh", "S0VZS0VZS0VZ"} <= found
    env = {"AWS_SECRET_ACCESS_KEY": "FAKEfake1234567890", "HOME": "/root", "PATH": "/bin"}
    assert secrets.environment_secrets(env) == {"FAKEfake1234567890"}
    (tmp_path / "a.json").write_text('{"m": "url /s/theLabSecretValue123/x FAKEfake1234567890"}')
    (tmp_path / "b.png").write_bytes(b"\x89PNG\x00\xff")
    usable = secrets.usable(found | {"FAKEfake1234567890", "short"})
    assert "short" not in usable
    assert secrets.scrub_tree(tmp_path, usable) == 2
    assert (tmp_path / "a.json").read_text() == '{"m": "url /s/<redacted>/x <redacted>"}'


@pytest.mark.skipif(html.find_cli() is None, reason="the Allure CLI comes with ./run setup")
def test_the_generated_report_has_no_analytics_and_loads_nothing_remote(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    test = {
        "uuid": str(uuid.uuid4()),
        "historyId": "h",
        "name": "test_x[east->west]",
        "fullName": "suites.x#test_x",
        "status": "passed",
        "start": 1,
        "stop": 2,
        "labels": [{"name": "suite", "value": "x"}],
    }
    (results / f"{test['uuid']}-result.json").write_text(json.dumps(test))
    line = html.generate(results, tmp_path / "html", tmp_path / "history.jsonl")
    index = tmp_path / "html" / "index.html"
    assert line == f"HTML report: {index}", line
    text = index.read_text()
    assert "googletagmanager" not in text and "gtag(" not in text
    assert html.remote_references(index) == []
    assert (tmp_path / "history.jsonl").exists()  # the trend carried to the next run
    raw = tmp_path / "raw.html"
    raw.write_text(
        '<body><script async src="https://www.googletagmanager.com/gtag/js?id=G"></script>'
        "<script>\n window.dataLayer = [];\n function gtag(){}\n gtag('js');\n</script>"
        "<p>kept</p></body>"
    )
    assert html.strip_analytics(raw) == 1
    assert raw.read_text() == "<body><p>kept</p></body>"
