"""udp, http, https, dns, tls and mtu: argv, parsing of real tool output, and a real batch.

Samples under tests/unit/samples/ were captured on this machine (dig 9.18, curl 7.88 with
`-w \\n%{json}`, openssl s_client 3.0, iputils ping 20221126 `-M do`, openbsd nc `-u`), all
against servers on 127.0.0.1 (dnsmasq, a Python HTTP/UDP server, a silent socket, a closed
port; the MTU refusal and loss in a private `unshare -n` namespace). The one hand-written
text is the remote `Frag needed` line, which needs a router with a smaller MTU; it follows
iputils' format exactly.
"""

from __future__ import annotations

import http.server
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from netconform.command import CommandResult
from netconform.outcomes import (
    Answer,
    Certificate,
    Endpoint,
    HttpStatus,
    Verdict,
    dns_name,
    ingress,
    pod,
)
from netconform.probes import Probe, Task, kind
from netconform.probes.batch import run_batch
from netconform.probes.dns import query_time_ms
from netconform.probes.udp import PAYLOAD
from netconform.topology import ProbeSettings
from netconform.vantage import RunnerVantage

SAMPLES = Path(__file__).parent / "samples"
SETTINGS = ProbeSettings()
DEST = pod("west", "probe-0-0", "10.102.1.2")
LOOPBACK = pod("", "lo", "127.0.0.1")


def sample(name: str) -> str:
    return (SAMPLES / name).read_text()


def result(stdout: str = "", stderr: str = "", rc: int = 0) -> CommandResult:
    return CommandResult(("x",), rc, stdout, stderr, "east/probe-0-0")


def words(argv: list[str], *expected: str) -> bool:
    """`expected` appears in argv as consecutive words."""
    n = len(expected)
    return any(tuple(argv[i : i + n]) == expected for i in range(len(argv) - n + 1))


# --- argv ------------------------------------------------------------------------------------


def test_udp_argv_sends_the_payload_on_stdin() -> None:
    task = Task("u", Probe("udp", 5353), DEST)
    udp = kind("udp")
    assert udp.argv(task, SETTINGS) == ["nc", "-u", "-v", "-n", "-w", "2", "10.102.1.2", "5353"]
    assert udp.stdin(task) == PAYLOAD
    (inv,) = udp.invocations([task], ProbeSettings(connect_timeout=1.5))
    assert inv.argv[5] == "1.5" and inv.stdin == PAYLOAD and inv.tasks == (task,)


def test_http_argv_to_an_ingress_resolves_the_host_to_the_address() -> None:
    dest = ingress("west", "shop.example.com", "/cart", "10.102.0.50")
    argv = kind("http").argv(Task("h", Probe("http"), dest), SETTINGS)
    assert argv[0] == "curl" and words(
        argv, "-w", "\\n@netconform-headers@\\n%{header_json}\\n%{json}"
    )
    assert words(argv, "--resolve", "shop.example.com:80:10.102.0.50")
    assert words(argv, "--connect-timeout", "2") and words(argv, "--max-time", "4")
    assert argv[-1] == "http://shop.example.com:80/cart"
    assert "-k" not in argv


def test_http_argv_to_a_pod_uses_the_address_and_the_path_parameter() -> None:
    probe = Probe("http", 8080, (("path", "/healthz"), ("headers", "X-A:1,X-B:2")))
    argv = kind("http").argv(Task("h", probe, DEST), SETTINGS)
    assert "--resolve" not in argv
    assert words(argv, "-H", "X-A:1") and words(argv, "-H", "X-B:2")
    assert argv[-1] == "http://10.102.1.2:8080/healthz"


def test_https_argv_skips_verification_unless_asked() -> None:
    dest = ingress("west", "shop.example.com", "/", "10.102.0.50")
    argv = kind("https").argv(Task("s", Probe("https"), dest), SETTINGS)
    assert "-k" in argv and words(argv, "--resolve", "shop.example.com:443:10.102.0.50")
    assert argv[-1] == "https://shop.example.com:443/"
    verified = kind("https").argv(
        Task("s", Probe("https", 8443, (("verify", "true"),)), dest), SETTINGS
    )
    assert "-k" not in verified and verified[-1] == "https://shop.example.com:8443/"


def test_dns_argv_words_for_server_port_tcp_and_search() -> None:
    dest = dns_name("west", "_http._tcp.echo.west.svc.cluster.local", "SRV")
    params = (("server", "10.200.0.10"), ("tcp", "true"), ("search", "true"))
    argv = kind("dns").argv(Task("d", Probe("dns", 5353, params), dest), SETTINGS)
    assert argv == [
        "dig",
        "+time=2",
        "+tries=1",
        "+nocmd",
        "+noquestion",
        "+tcp",
        "+search",
        "@10.200.0.10",
        "-p",
        "5353",
        "_http._tcp.echo.west.svc.cluster.local",
        "SRV",
    ]


def test_dns_argv_defaults_to_the_resolv_conf_server_and_an_a_record() -> None:
    dest = Endpoint("west", "echo", "echo", kind="dns-name")  # no record type
    argv = kind("dns").argv(Task("d", Probe("dns"), dest), ProbeSettings(connect_timeout=0.3))
    assert argv[1] == "+time=1"  # never 0: dig would wait forever
    assert not any(w.startswith("@") or w in ("+tcp", "+search", "-p") for w in argv)
    assert argv[-2:] == ["echo", "A"]


def test_tls_argv_sends_sni_and_checks_the_host() -> None:
    dest = ingress("west", "shop.example.com", "/", "10.102.0.50")
    probe = Probe("tls", 8443, (("cafile", "/etc/ssl/lab-ca.pem"),))
    argv = kind("tls").argv(Task("t", probe, dest), SETTINGS)
    assert argv[:2] == ["timeout", f"{SETTINGS.connect_timeout + 3:g}"]  # s_client has none
    assert argv[2:] == [
        "openssl",
        "s_client",
        "-connect",
        "10.102.0.50:8443",
        "-servername",
        "shop.example.com",
        "-verify_hostname",
        "shop.example.com",
        "-CAfile",
        "/etc/ssl/lab-ca.pem",
    ]
    by_ip = kind("tls").argv(Task("t", Probe("tls"), DEST), SETTINGS)
    assert words(by_ip, "-connect", "10.102.1.2:443") and words(by_ip, "-servername", "10.102.1.2")
    assert "-CAfile" not in by_ip


def test_mtu_argv_is_one_df_ping_of_the_size() -> None:
    task = Task("m", Probe("mtu", params=(("size", "1372"),)), DEST)
    argv = kind("mtu").argv(task, SETTINGS)
    assert argv == ["ping", "-n", "-M", "do", "-s", "1372", "-c", "1", "-W", "1", "10.102.1.2"]
    default = kind("mtu").argv(Task("m", Probe("mtu"), DEST), SETTINGS)
    assert words(default, "-s", "1472")


# --- parsing real output ---------------------------------------------------------------------

A_TASK = Task("d", Probe("dns", 53, (("server", "127.0.0.1"),)), dns_name("", "a.test"))
SRV_TASK = Task("d", Probe("dns"), dns_name("", "_http._tcp.a.test", "SRV"))


def test_dns_answer_a() -> None:
    seen = kind("dns").parse(A_TASK, result(sample("dig_a.txt")), SETTINGS)
    assert seen.outcome == Answer(Verdict.ALLOW, ("10.1.2.3",))
    assert seen.detail == "1 A record(s)"


def test_dns_detail_carries_digs_query_time() -> None:
    task = Task("d", Probe("dns"), dns_name("", "kube-dns.kube-system.svc.cluster.local"))
    seen = kind("dns").parse(task, result(sample("dig_a_stats.txt")), SETTINGS)
    assert seen.outcome == Answer(Verdict.ALLOW, ("10.201.0.10",))
    assert seen.detail == "1 A record(s) (server 10.201.0.10), query time 0 ms"
    assert query_time_ms(sample("dig_a_stats.txt")) == 0
    assert query_time_ms(sample("dig_a.txt")) is None


def test_dns_answer_srv_keeps_the_whole_record() -> None:
    seen = kind("dns").parse(SRV_TASK, result(sample("dig_srv.txt")), SETTINGS)
    assert seen.outcome == Answer(Verdict.ALLOW, ("0 10 8080 web.a.test.",))


def test_dns_answer_without_the_asked_type_is_an_empty_answer() -> None:
    aaaa = Task("d", Probe("dns"), dns_name("", "a.test", "AAAA"))
    seen = kind("dns").parse(aaaa, result(sample("dig_a.txt")), SETTINGS)
    assert seen.outcome == Answer(Verdict.ALLOW, ())
    assert seen.detail == "status NOERROR, no AAAA record"


@pytest.mark.parametrize(
    ("name", "rc", "verdict", "detail"),
    [
        ("dig_nxdomain.txt", 0, Verdict.NXDOMAIN, "status NXDOMAIN"),
        ("dig_servfail.txt", 0, Verdict.SERVFAIL, "status SERVFAIL"),
        ("dig_refused.txt", 0, Verdict.REFUSED, "status REFUSED"),
        ("dig_timeout.txt", 9, Verdict.TIMEOUT, "no answer (server 127.0.0.1)"),
    ],
)
def test_dns_failures(name: str, rc: int, verdict: Verdict, detail: str) -> None:
    seen = kind("dns").parse(A_TASK, result(sample(name), rc=rc), SETTINGS)
    assert type(seen.outcome) is not Answer
    assert (seen.outcome.verdict, seen.detail) == (verdict, detail)


def test_dns_missing_dig_and_usage_errors() -> None:
    dns = kind("dns")
    gone = dns.parse(A_TASK, result(stderr="sh: dig: not found", rc=127), SETTINGS)
    assert (gone.outcome.verdict, gone.detail) == (
        Verdict.ERROR,
        "dig not found in the probe image",
    )
    bad = dns.parse(A_TASK, result(stderr="Invalid option: +bogus", rc=1), SETTINGS)
    assert (bad.outcome.verdict, bad.detail) == (Verdict.ERROR, "dig rc 1: Invalid option: +bogus")


def test_dns_server_port_closed_is_refused() -> None:
    seen = kind("dns").parse(A_TASK, result(sample("dig_closed_port.txt"), rc=9), SETTINGS)
    assert seen.outcome.verdict == Verdict.REFUSED


HTTP_TASK = Task("h", Probe("http", 18080), ingress("", "shop.test", "/", "127.0.0.1"))


def test_http_200_with_the_first_body_line() -> None:
    seen = kind("http").parse(HTTP_TASK, result(sample("curl_200.txt")), SETTINGS)
    assert seen.outcome == HttpStatus(Verdict.ALLOW, 200, "", "echo-west-0")
    assert seen.detail == "HTTP 200 from 127.0.0.1"


def test_http_308_with_its_location() -> None:
    seen = kind("http").parse(HTTP_TASK, result(sample("curl_308.txt")), SETTINGS)
    assert seen.outcome == HttpStatus(Verdict.ALLOW, 308, "https://shop.test/new", "")
    assert str(seen.outcome) == "HTTP 308 -> https://shop.test/new"


@pytest.mark.parametrize(
    ("name", "stderr", "rc", "verdict", "detail"),
    [
        (
            "curl_refused.txt",
            "curl: (7) Failed to connect to 127.0.0.1 port 18084 after 0 ms: "
            "Couldn't connect to server",
            7,
            Verdict.REFUSED,
            "could not connect (refused or unreachable): Failed to connect to 127.0.0.1 "
            "port 18084 after 0 ms: Couldn't connect to server",
        ),
        (
            "curl_timeout.txt",
            "curl: (28) Operation timed out after 2002 milliseconds with 0 bytes received",
            28,
            Verdict.TIMEOUT,
            "timed out: Operation timed out after 2002 milliseconds with 0 bytes received",
        ),
    ],
)
def test_http_failures(name: str, stderr: str, rc: int, verdict: Verdict, detail: str) -> None:
    seen = kind("http").parse(HTTP_TASK, result(sample(name), stderr, rc), SETTINGS)
    assert not isinstance(seen.outcome, HttpStatus)
    assert (seen.outcome.verdict, seen.detail) == (verdict, detail)


def test_http_without_a_json_line_is_an_error() -> None:
    seen = kind("https").parse(HTTP_TASK, result(stderr="sh: curl: not found", rc=127), SETTINGS)
    assert seen.outcome.verdict == Verdict.ERROR
    assert seen.detail == "curl gave no result (rc 127): sh: curl: not found"


TLS_TASK = Task("t", Probe("tls", 8443), ingress("", "shop.test", "/", "127.0.0.1"))


def test_tls_ok() -> None:
    seen = kind("tls").parse(TLS_TASK, result(sample("tls_ok.txt")), SETTINGS)
    assert seen.outcome == Certificate(
        Verdict.ALLOW,
        subject="CN = shop.test, O = Acme",
        issuer="CN = shop.test, O = Acme",
        not_after="Dec 25 09:12:42 2026 GMT",
        verified="ok",
    )
    assert seen.detail == "certificate CN = shop.test, O = Acme, verify: ok"


def test_tls_hostname_mismatch() -> None:
    seen = kind("tls").parse(TLS_TASK, result(sample("tls_mismatch.txt")), SETTINGS)
    assert isinstance(seen.outcome, Certificate)
    assert seen.outcome.verdict == Verdict.ALLOW
    assert seen.outcome.verified == "hostname mismatch"
    assert not Certificate(Verdict.ALLOW, verified="ok").satisfied_by(seen.outcome)


def test_tls_refused_and_no_handshake() -> None:
    tls = kind("tls")
    refused = tls.parse(TLS_TASK, result(stderr=sample("tls_refused.txt"), rc=1), SETTINGS)
    assert (refused.outcome.verdict, refused.detail) == (Verdict.REFUSED, "connection refused")
    # a plain-HTTP server answering the ClientHello: no certificate, no verify line
    garbage = tls.parse(
        TLS_TASK,
        result("CONNECTED(00000003)\n---\nno peer certificate available\n", rc=1),
        SETTINGS,
    )
    assert garbage.outcome.verdict == Verdict.TLS_ERROR
    assert garbage.detail == "no handshake: no peer certificate available"


def test_tls_ended_by_its_timeout_is_a_timeout_not_a_hung_batch() -> None:
    """An unreachable address: `timeout` ends s_client (exit 124) before the batch's exec
    timeout would fail every other probe of the batch."""
    tls = kind("tls")
    silent = tls.parse(TLS_TASK, result("", rc=124), SETTINGS)
    assert (silent.outcome.verdict, silent.detail) == (Verdict.TIMEOUT, "connect timed out")
    stuck = tls.parse(TLS_TASK, result("CONNECTED(00000003)\n", rc=124), SETTINGS)
    assert (stuck.outcome.verdict, stuck.detail) == (Verdict.TLS_ERROR, "handshake timed out")


MTU_TASK = Task("m", Probe("mtu", params=(("size", "1472"),)), LOOPBACK)
MTU_FRAG_NEEDED = """PING 10.102.1.2 (10.102.1.2) 1472(1500) bytes of data.
From 10.101.0.1 icmp_seq=1 Frag needed and DF set (mtu = 1400)

--- 10.102.1.2 ping statistics ---
1 packets transmitted, 0 received, +1 errors, 100% packet loss, time 0ms
"""


def test_mtu_crosses() -> None:
    seen = kind("mtu").parse(MTU_TASK, result(sample("ping_df_ok.txt")), SETTINGS)
    assert (seen.outcome.verdict, seen.detail) == (Verdict.ALLOW, "1500-byte DF packet crossed")
    assert seen.ping is not None and (seen.ping.transmitted, seen.ping.received) == (1, 1)


def test_mtu_refused_locally() -> None:
    raw = result(
        sample("ping_df_local_too_big.txt"), "ping: local error: message too long, mtu=1500", 1
    )
    task = Task("m", Probe("mtu", params=(("size", "1473"),)), LOOPBACK)
    seen = kind("mtu").parse(task, raw, SETTINGS)
    assert seen.outcome.verdict == Verdict.TOO_BIG
    assert seen.detail == "1501-byte DF packet refused, path says mtu 1500"


def test_mtu_refused_by_a_router() -> None:
    seen = kind("mtu").parse(MTU_TASK, result(MTU_FRAG_NEEDED, rc=1), SETTINGS)
    assert seen.outcome.verdict == Verdict.TOO_BIG
    assert seen.detail == "1500-byte DF packet refused, path says mtu 1400"


def test_mtu_lost_and_broken() -> None:
    mtu = kind("mtu")
    lost = mtu.parse(MTU_TASK, result(sample("ping_df_lost.txt"), rc=1), SETTINGS)
    assert (lost.outcome.verdict, lost.detail) == (Verdict.TIMEOUT, "1500-byte DF packet lost")
    assert lost.ping is not None and lost.ping.received == 0
    gone = mtu.parse(MTU_TASK, result(stderr="sh: ping: not found", rc=127), SETTINGS)
    assert (gone.outcome.verdict, gone.detail) == (
        Verdict.ERROR,
        "ping rc 127: sh: ping: not found",
    )


UDP_TASK = Task("u", Probe("udp", 18082), LOOPBACK)


def test_udp_reply_and_silence() -> None:
    udp = kind("udp")
    reply = udp.parse(UDP_TASK, result(PAYLOAD + "\n"), SETTINGS)
    assert (reply.outcome.verdict, reply.detail) == (Verdict.ALLOW, f"reply: {PAYLOAD}")
    # openbsd nc -u to a bound socket that never answers: rc 0, nothing printed, after -w
    silence = udp.parse(UDP_TASK, result("", "", 0), SETTINGS)
    assert (silence.outcome.verdict, silence.detail) == (Verdict.TIMEOUT, "no reply")


def test_udp_closed_port_for_real_is_refused() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends
    task = Task("u", Probe("udp", port), LOOPBACK)
    seen = run_batch(RunnerVantage(), [task], ProbeSettings(connect_timeout=1))
    assert seen["u"].outcome.verdict == Verdict.REFUSED, seen["u"].detail


# --- a real batch on loopback ----------------------------------------------------------------


@dataclass
class Servers:
    dns: int
    http: int
    udp: int
    closed: int


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/old":
            self.send_response(308)
            self.send_header("Location", "https://shop.test/new")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"echo-west-0\nsecond line\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (dnsmasq takes both)."""
    for _ in range(20):
        with socket.socket() as t, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            t.bind(("127.0.0.1", 0))
            port: int = t.getsockname()[1]
            try:
                u.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def _start_dnsmasq(port: int) -> subprocess.Popen[bytes]:
    argv = [
        "dnsmasq",
        "--no-daemon",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--pid-file=",
        f"--port={port}",
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        "--address=/a.test/10.1.2.3",
        "--address=/nx.test/",
        "--srv-host=_http._tcp.a.test,web.a.test,8080,0,10",
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dnsmasq exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.02)
    proc.kill()
    proc.wait()
    raise RuntimeError("dnsmasq did not start listening")


@pytest.fixture
def servers() -> Iterator[Servers]:
    if shutil.which("dnsmasq") is None:
        pytest.skip("dnsmasq is not installed")
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    web_thread = threading.Thread(target=web.serve_forever, daemon=True)
    web_thread.start()

    echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    echo.bind(("127.0.0.1", 0))
    echo.settimeout(0.1)
    stop = threading.Event()

    def serve_echo() -> None:
        while not stop.is_set():
            try:
                data, peer = echo.recvfrom(2048)
            except TimeoutError:
                continue
            echo.sendto(data, peer)

    echo_thread = threading.Thread(target=serve_echo, daemon=True)
    echo_thread.start()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed: int = s.getsockname()[1]

    dns_port = _free_port()
    dnsmasq = _start_dnsmasq(dns_port)
    try:
        yield Servers(dns_port, web.server_address[1], echo.getsockname()[1], closed)
    finally:
        dnsmasq.terminate()
        try:
            dnsmasq.wait(timeout=3)
        except subprocess.TimeoutExpired:
            dnsmasq.kill()
            dnsmasq.wait()
        web.shutdown()
        web.server_close()
        web_thread.join(timeout=2)
        stop.set()
        echo_thread.join(timeout=2)
        echo.close()


def test_batch_of_every_kind_runs_for_real_on_loopback(servers: Servers) -> None:
    dns = Probe("dns", servers.dns, (("server", "127.0.0.1"),))
    site = ingress("", "shop.test", "/", "127.0.0.1")
    tasks = [
        Task("dns-a", dns, dns_name("", "a.test")),
        Task("dns-srv", dns, dns_name("", "_http._tcp.a.test", "SRV")),
        Task("dns-nx", dns, dns_name("", "x.nx.test")),
        Task("dns-refused", dns, dns_name("", "elsewhere.test")),
        Task("http-200", Probe("http", servers.http), site),
        Task("http-308", Probe("http", servers.http, (("path", "/old"),)), LOOPBACK),
        Task("http-closed", Probe("http", servers.closed), LOOPBACK),
        Task("tls-closed", Probe("tls", servers.closed), site),
        Task("udp-echo", Probe("udp", servers.udp), LOOPBACK),
        Task("mtu-1500", Probe("mtu", params=(("size", "1472"),)), LOOPBACK),
    ]
    seen = run_batch(RunnerVantage(), tasks, ProbeSettings())
    assert set(seen) == {t.id for t in tasks}
    details = {k: v.detail for k, v in seen.items()}

    assert seen["dns-a"].outcome == Answer(Verdict.ALLOW, ("10.1.2.3",)), details
    assert seen["dns-srv"].outcome == Answer(Verdict.ALLOW, ("0 10 8080 web.a.test.",)), details
    assert seen["dns-nx"].outcome.verdict == Verdict.NXDOMAIN, details
    assert seen["dns-refused"].outcome.verdict == Verdict.REFUSED, details
    assert seen["http-200"].outcome == HttpStatus(Verdict.ALLOW, 200, "", "echo-west-0"), details
    assert seen["http-308"].outcome == HttpStatus(
        Verdict.ALLOW, 308, "https://shop.test/new", ""
    ), details
    redirect = seen["http-308"].outcome
    assert isinstance(redirect, HttpStatus)  # the response headers, as curl read them
    assert redirect.header("Location") == "https://shop.test/new"
    assert redirect.header("content-length") == "0"
    assert redirect.header("strict-transport-security") is None
    assert seen["http-closed"].outcome.verdict == Verdict.REFUSED, details
    assert seen["tls-closed"].outcome.verdict == Verdict.REFUSED, details
    assert seen["udp-echo"].outcome.verdict == Verdict.ALLOW, details
    assert PAYLOAD in seen["udp-echo"].detail  # nc -v sends its own X probes first
    assert seen["mtu-1500"].outcome.verdict == Verdict.ALLOW, details
    # the raw result is the tool's own, per task
    assert seen["http-200"].raw.argv[0] == "curl" and seen["dns-a"].raw.rc == 0
