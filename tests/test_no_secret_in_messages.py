"""No secret in any message: each failure path that names a server or a kubeconfig field is
injected (API gone, a wrong port, TLS errors, 401) and the run's whole output, JUnit report and
outcome file are searched for the server path's secret, the bearer token and the client key."""

from __future__ import annotations

import base64
import http.server
import json
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from netconform.errors import ApiUnreachableError, UnauthorizedError
from tests.cloud.tlscert import make_cert

REPO = Path(__file__).resolve().parents[1]
PATH_SECRET = "pAthSecret-0123456789abcdefXYZ"
TOKEN = "bearerTOKEN-9876543210zyxwvu"
CLOUD_SECRET = "awsSECRETaccessKEY-0011223344"


class _Handler(http.server.BaseHTTPRequestHandler):
    """401 with a Status body as kube-apiserver answers, or a web server's 404 page that
    echoes the path it was asked for (a wrong port)."""

    mode = "404"

    def do_GET(self) -> None:
        if self.mode == "401":
            status: dict[str, str | int] = {"kind": "Status", "apiVersion": "v1"}
            status |= {"status": "Failure"}
            status |= {"message": "Unauthorized", "reason": "Unauthorized", "code": 401}
            code, kind, body = 401, "application/json", json.dumps(status).encode()
        else:
            code, kind, body = 404, "text/html", f"<h1>no {self.path}</h1>".encode()
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


def _serve(mode: str, tls: Path | None = None) -> Iterator[int]:
    handler = type(f"H{mode}", (_Handler,), {"mode": mode})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*make_cert(tls))
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def web_404() -> Iterator[int]:
    yield from _serve("404")


@pytest.fixture(scope="module")
def api_401() -> Iterator[int]:
    yield from _serve("401")


@pytest.fixture(scope="module")
def tls_404(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    yield from _serve("404", tmp_path_factory.mktemp("tls"))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def client_key(tmp_path: Path) -> tuple[str, str]:
    """(client-certificate-data, client-key-data) of a throwaway key pair."""
    cert, key = make_cert(tmp_path)
    return base64.b64encode(cert.read_bytes()).decode(), base64.b64encode(key.read_bytes()).decode()


def write_target(tmp_path: Path, server: str, verify: bool) -> tuple[Path, list[str]]:
    """A topology and its kubeconfig; the secrets they hold."""
    cert_data, key_data = client_key(tmp_path)
    cluster: dict[str, object] = {"server": server}
    if not verify:
        cluster["insecure-skip-tls-verify"] = True
    user = {"token": TOKEN, "client-certificate-data": cert_data, "client-key-data": key_data}
    (tmp_path / "kubeconfig").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "mrc-east",
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "mrc-east", "context": {"cluster": "c", "user": "u"}}],
            }
        )
    )
    topology = tmp_path / "topology.yaml"
    topology.write_text(
        yaml.safe_dump(
            {
                "name": "t",
                "kubeconfig": "kubeconfig",
                "clusters": [{"name": "east", "context": "mrc-east", "pod_cidrs": ["10.1.0.0/16"]}],
            }
        )
    )
    key_pem = base64.b64decode(key_data).decode()
    key_body = "".join(ln for ln in key_pem.splitlines() if "-----" not in ln)
    return topology, [PATH_SECRET, TOKEN, key_data, key_body[:40], CLOUD_SECRET]


def run_and_search(tmp_path: Path, topology: Path, secrets: list[str]) -> tuple[int, str]:
    outcome, junit = tmp_path / "outcome.json", tmp_path / "junit.xml"
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "suites/pod_to_pod"]
    argv += ["--topology", str(topology), "--outcome", str(outcome), f"--junitxml={junit}"]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AWS_SECRET_ACCESS_KEY": CLOUD_SECRET}
    proc = subprocess.run(
        argv, cwd=REPO, capture_output=True, text=True, timeout=180, check=False, env=env
    )
    text = proc.stdout + proc.stderr
    written = [p.read_text() for p in (outcome, junit) if p.exists()]
    for where, content in [("output", text), *(("report", w) for w in written)]:
        for secret in secrets:
            assert secret not in content, f"a secret in the run's {where}:\n{content[-3000:]}"
    assert "Traceback" not in text, text
    errors = [ln for ln in text.splitlines() if "netconform: error:" in ln]
    assert len(errors) == 1, text
    return proc.returncode, errors[0]


def test_api_gone(tmp_path: Path) -> None:
    port = closed_port()
    topology, secrets = write_target(tmp_path, f"http://127.0.0.1:{port}/s/{PATH_SECRET}", False)
    code, line = run_and_search(tmp_path, topology, secrets)
    assert code == ApiUnreachableError.exit_code and "connection refused" in line, line
    assert f"http://127.0.0.1:{port}/..." in line, line


def test_wrong_port_a_web_server_echoing_the_path(tmp_path: Path, web_404: int) -> None:
    server = f"http://127.0.0.1:{web_404}/s/{PATH_SECRET}"
    topology, secrets = write_target(tmp_path, server, False)
    code, line = run_and_search(tmp_path, topology, secrets)
    assert code == ApiUnreachableError.exit_code, line
    assert "no Kubernetes API server answers there" in line and "HTTP 404" in line, line


def test_tls_to_a_plain_http_port(tmp_path: Path, web_404: int) -> None:
    server = f"https://127.0.0.1:{web_404}/s/{PATH_SECRET}"
    topology, secrets = write_target(tmp_path, server, False)
    code, line = run_and_search(tmp_path, topology, secrets)
    assert code == ApiUnreachableError.exit_code and "SSL" in line, line


def test_tls_certificate_not_trusted(tmp_path: Path, tls_404: int) -> None:
    server = f"https://127.0.0.1:{tls_404}/s/{PATH_SECRET}"
    topology, secrets = write_target(tmp_path, server, True)
    code, line = run_and_search(tmp_path, topology, secrets)
    assert code == ApiUnreachableError.exit_code and "CERTIFICATE_VERIFY_FAILED" in line, line


def test_credentials_refused(tmp_path: Path, api_401: int) -> None:
    server = f"http://127.0.0.1:{api_401}/s/{PATH_SECRET}"
    topology, secrets = write_target(tmp_path, server, False)
    code, line = run_and_search(tmp_path, topology, secrets)
    assert code == UnauthorizedError.exit_code, line
    assert "refused this kubeconfig's credentials (401 Unauthorized)" in line, line


def test_an_error_built_from_a_secret_is_redacted_anyway() -> None:
    """The second line of defence: a message quoting a registered secret by mistake."""
    from netconform import redact
    from netconform.errors import LabError

    redact.register([PATH_SECRET])
    assert str(LabError(f"GET http://127.0.0.1:1/s/{PATH_SECRET}/api")) == (
        f"GET http://127.0.0.1:1/s/{redact.REDACTED}/api"
    )
