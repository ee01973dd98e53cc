"""An HTTP proxy on 127.0.0.1 that injects *per-key* DeleteObjects errors and failing listings.

testkit/fault_proxy.py fails whole requests; S3 can also answer a DeleteObjects request
with 200 and an `<Error>` per key it could not delete (InternalError, SlowDown, AccessDenied).
This proxy takes the chosen keys out of the request before it reaches the emulator, so they are
really not deleted, and adds the `<Error>` entries to the emulator's real response.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import threading
import xml.etree.ElementTree as ET
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
ET.register_namespace("", NS)  # forward `<Delete xmlns=...>`, not `<ns0:Delete>`, which S3 parsers reject


class KeyFaultProxy:
    def __init__(self, upstream: str) -> None:
        target = urlsplit(upstream)
        self.upstream = (target.hostname or "127.0.0.1", target.port or 80)
        self.lock = threading.Lock()
        #: full key -> error codes for its next delete attempts ("" = let it through), consumed in order
        self.key_faults: dict[str, list[str]] = defaultdict(list)
        #: list requests whose prefix starts with one of these get 403 AccessDenied
        self.denied_list_prefixes: set[str] = set()
        self.deletes_forwarded: list[str] = []
        self.injected = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def fail_key(self, key: str, *codes: str) -> None:
        with self.lock:
            self.key_faults[key].extend(codes)

    def next_fault(self, key: str) -> str:
        with self.lock:
            codes = self.key_faults.get(key)
            if codes:
                code = codes.pop(0)
                self.injected += bool(code)
                return code
            return ""

    def __enter__(self) -> KeyFaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(proxy: KeyFaultProxy) -> type[BaseHTTPRequestHandler]:
    """A handler class bound to `proxy` (http.server wants a class, not an object)."""
    return type("Handler", (_Handler,), {"proxy": proxy})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy: KeyFaultProxy

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _reply(self, status: int, body: bytes, headers: list[tuple[str, str]] = ()) -> None:  # type: ignore[assignment]
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in {"content-length", "transfer-encoding", "connection"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _forward(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, list[tuple[str, str]]]:
        conn = http.client.HTTPConnection(*self.proxy.upstream, timeout=60)
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read(), response.getheaders()
        finally:
            conn.close()

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in {"connection", "keep-alive"}}
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        bucket = url.path.strip("/").split("/")[0]
        if self.command == "GET" and "list-type" in query:
            prefix = query.get("prefix", [""])[0]
            if any(prefix.startswith(p) for p in self.proxy.denied_list_prefixes):
                error = b"<?xml version='1.0'?><Error><Code>AccessDenied</Code><Message>injected</Message></Error>"
                self._reply(403, error, [("Content-Type", "application/xml")])
                return
        if self.command == "POST" and "delete" in query:
            self._delete(body, headers, bucket)
            return
        status, data, response_headers = self._forward(body, headers)
        self._reply(status, data, response_headers)

    def _delete(self, body: bytes, headers: dict[str, str], bucket: str) -> None:
        request = ET.fromstring(body)
        ns = {"s3": NS} if request.tag.startswith("{") else {}
        find = (lambda el, name: el.find(f"s3:{name}", ns)) if ns else (lambda el, name: el.find(name))
        objects = request.findall("s3:Object", ns) if ns else request.findall("Object")
        errors = []
        for obj in objects:
            key = find(obj, "Key").text or ""
            version = find(obj, "VersionId")
            code = self.proxy.next_fault(key)
            if code:
                errors.append((key, version.text if version is not None else None, code))
                request.remove(obj)
            else:
                with self.proxy.lock:
                    self.proxy.deletes_forwarded.append(key)
        if len(request.findall("s3:Object", ns) if ns else request.findall("Object")):
            forwarded = ET.tostring(request)
            headers = {
                k: v
                for k, v in headers.items()
                if not k.lower().startswith(("x-amz-checksum", "x-amz-sdk-checksum", "content-md5"))
            }
            headers["Content-Length"] = str(len(forwarded))
            headers["Content-MD5"] = base64.b64encode(hashlib.md5(forwarded).digest()).decode()
            status, data, response_headers = self._forward(forwarded, headers)
            if status != 200:
                self._reply(status, data, response_headers)
                return
            result = ET.fromstring(data)
        else:
            result, response_headers = ET.Element(f"{{{NS}}}DeleteResult"), [("Content-Type", "application/xml")]
        prefix = "{" + NS + "}" if result.tag.startswith("{") else ""
        for key, version, code in errors:
            error = ET.SubElement(result, f"{prefix}Error")
            ET.SubElement(error, f"{prefix}Key").text = key
            if version:
                ET.SubElement(error, f"{prefix}VersionId").text = version
            ET.SubElement(error, f"{prefix}Code").text = code
            ET.SubElement(error, f"{prefix}Message").text = "injected per-key error"
        self._reply(200, ET.tostring(result, xml_declaration=True, encoding="UTF-8"), response_headers)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle
