"""TLS servers on 127.0.0.1 for the tls tests: Python's `ssl` in a thread (certificates chosen
by SNI), a listener that never answers, one that closes at once, and Debian's nginx.

Only loopback: every server binds 127.0.0.1, and nothing here dials anything else.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from netconform.certmint import Minted


def write_pair(directory: Path, name: str, minted: Minted) -> tuple[Path, Path]:
    """`name.crt` and `name.key` in `directory`."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    cert.write_bytes(minted.cert_pem)
    key.write_bytes(minted.key_pem)
    return cert, key


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _server_context(directory: Path, name: str, minted: Minted) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*write_pair(directory, name, minted))
    return ctx


@contextlib.contextmanager
def python_tls_server(
    directory: Path, default: Minted, by_name: Mapping[str, Minted]
) -> Iterator[int]:
    """A TLS 1.2+ server (Python's defaults); the certificate of `by_name[SNI]`, else
    `default`. Yields its port."""
    contexts = {name: _server_context(directory, name, m) for name, m in by_name.items()}
    main = _server_context(directory, "default", default)

    def pick(sslobj: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        if name in contexts:
            sslobj.context = contexts[name]

    main.sni_callback = pick
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(3)
            with main.wrap_socket(conn, server_side=True):
                pass

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=2)
        listener.close()


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """Accepts TCP (the kernel's backlog) and never says a word: handshakes time out."""
    with socket.create_server(("127.0.0.1", 0), backlog=8) as listener:
        yield listener.getsockname()[1]


@contextlib.contextmanager
def closing_server() -> Iterator[int]:
    """Reads the ClientHello and hangs up: the handshake meets an EOF."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn, contextlib.suppress(OSError):
                conn.settimeout(2)
                conn.recv(65536)  # the ClientHello, read so that closing sends FIN, not RST

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=2)
        listener.close()


def nginx_binary() -> str | None:
    return shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )


NGINX_CONF = """\
user root;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    ssl_protocols {protocols};
{ciphers}
    server {{
        listen 127.0.0.1:{port} ssl default_server;
        server_name _;
        ssl_certificate {tmp}/default.crt;
        ssl_certificate_key {tmp}/default.key;
        return 404;
    }}
{named}
}}
"""
NAMED_SERVER = """\
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name {name};
        ssl_certificate {tmp}/{name}.crt;
        ssl_certificate_key {tmp}/{name}.key;
        return 200 "ok\\n";
    }}
"""


@contextlib.contextmanager
def nginx_tls(
    directory: Path,
    default: Minted,
    by_name: Mapping[str, Minted],
    protocols: str = "TLSv1.2 TLSv1.3",
    ciphers: str = "",
) -> Iterator[int]:
    """Debian's nginx on 127.0.0.1 as an ingress controller serves TLS: `default` when no
    server_name matches SNI (the controller's fake certificate), else the host's own.
    Stopped by its exact pid. Yields its port."""
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is not installed")
    port = free_port()
    write_pair(directory, "default", default)
    named = ""
    for name, minted in by_name.items():
        write_pair(directory, name, minted)
        named += NAMED_SERVER.format(port=port, name=name, tmp=directory)
    conf = directory / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            tmp=directory,
            port=port,
            protocols=protocols,
            ciphers=f"    ssl_ciphers {ciphers};" if ciphers else "",
            named=named,
        )
    )
    argv = [binary, "-p", str(directory), "-e", str(directory / "error.log"), "-c", str(conf)]
    proc = subprocess.Popen(
        [*argv, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_listening(proc, port, directory / "error.log")
        yield port
    finally:
        proc.terminate()  # this nginx's master, by its own pid; it stops its worker
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = log.read_text() if log.exists() else ""
            raise RuntimeError(f"nginx exited with {proc.returncode}: {text[-500:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("nginx did not start listening")
