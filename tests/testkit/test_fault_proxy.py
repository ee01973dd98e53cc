"""FaultProxy.idle: what a test waits on after stopping a client, before it reads the store."""

from __future__ import annotations

import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Event, Thread

from testkit.fault_proxy import FaultProxy
from tests.fixtures.waiting import wait_until


def _upstream(gate: Event) -> ThreadingHTTPServer:
    """An upstream that answers a PUT only once `gate` is set: a write still on its way."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_PUT(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            gate.wait(30)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    Thread(target=server.serve_forever, daemon=True).start()
    return server


def _client(proxy: FaultProxy) -> socket.socket:
    host, port = proxy.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)))


def test_fault_proxy_idle_false_while_a_whole_request_is_on_its_way():
    gate = Event()
    upstream = _upstream(gate)
    with FaultProxy(f"http://127.0.0.1:{upstream.server_address[1]}") as proxy, _client(proxy) as client:
        wait_until(proxy.idle, 30, "the connection to be accepted")
        client.sendall(b"PUT /k HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok")
        assert not proxy.idle()  # unread, or being forwarded: never idle until the upstream answers
        gate.set()
        wait_until(proxy.idle, 30, "the PUT to be answered")
        assert client.recv(100).startswith(b"HTTP/1.1 200")
    upstream.shutdown()


def test_fault_proxy_idle_true_while_a_request_waits_for_its_client():
    gate = Event()
    gate.set()
    upstream = _upstream(gate)
    with FaultProxy(f"http://127.0.0.1:{upstream.server_address[1]}") as proxy, _client(proxy) as client:
        client.sendall(b"PUT /k HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n")  # body not sent yet
        wait_until(proxy.idle, 30, "the proxy to wait for the body")
        assert proxy.requests == 0  # not forwarded: it cannot land until the client sends the rest
        client.sendall(b"ok")
        assert client.recv(100).startswith(b"HTTP/1.1 200")
    upstream.shutdown()
