"""What a kubelet shows the API server: its Node, the pods bound to it, and the log endpoint.

`kubectl logs`, `argo logs` and argo-server's log API read `pods/log`, which the API server proxies
to the kubelet of the pod's node: `https://<node InternalIP>:<daemonEndpoints port>/containerLogs/
<namespace>/<pod>/<container>`. So the agent registers one Node on 127.0.0.1, runs the pods
kube-scheduler binds to it, and serves that path from the log files it writes. TLS both
ways: the API server checks this server's certificate (`--kubelet-certificate-authority`) and this
server accepts only the API server's client certificate (`--kubelet-client-certificate`).

The agent writes a container's output as it comes, without times; with `timestamps=true` (which
Argo's log reader always asks for, to merge pods) each line is given the file's last-write time,
minus a microsecond per later line, so that one pod's lines keep their order in the merge.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("kiosk-agent")
NODE_NAME = "kiosk-node"
LOG_PATH = re.compile(r"^/containerLogs/(?P<namespace>[^/]+)/(?P<pod>[^/]+)/(?P<container>[^/]+)$")
FOLLOW_POLL_S = 0.25
HEARTBEAT_S = 10.0  # a kubelet renews its Lease every 10 s (a quarter of its 40 s duration)
LEASE_NAMESPACE = "kube-node-lease"


@dataclass(frozen=True, kw_only=True)
class KubeletConfig:
    port: int
    cert: Path  # this server's certificate (SAN IP 127.0.0.1) and key
    key: Path
    client_ca: Path  # what the API server's client certificate must chain to


def _machine() -> dict[str, str]:
    """What this machine has, as a kubelet reports it: the scheduler fits pods' requests into it."""
    meminfo = Path("/proc/meminfo").read_text().split()
    memory_kib = int(meminfo[meminfo.index("MemTotal:") + 1])
    return {"cpu": str(os.cpu_count() or 1), "memory": f"{memory_kib}Ki", "pods": "10000"}


def register_node(core: k8s.CoreV1Api, port: int) -> None:
    """Create (or refresh) the Node the scheduler binds pods to and the API server reaches this
    agent's log endpoint through.
    """
    status = {
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": NODE_NAME}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        "conditions": [_ready()],
        "capacity": _machine(),
        "allocatable": _machine(),
    }
    body = {"metadata": {"name": NODE_NAME, "labels": {"kubernetes.io/hostname": NODE_NAME}}, "status": status}
    try:
        core.create_node(body)
    except ApiException as error:
        if error.status != 409:
            raise
    core.patch_node_status(NODE_NAME, {"status": status})  # create may drop status; a restart has a new port


def _ready() -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "type": "Ready",
        "status": "True",
        "reason": "KioskAgentReady",
        "message": "agent running",
        "lastHeartbeatTime": now,
    }


def heartbeat(api: k8s.ApiClient, stopping: threading.Event) -> threading.Thread:
    """Renew the Node's Lease and Ready condition every HEARTBEAT_S, as a kubelet does: the
    node-lifecycle controller lifts the new Node's `not-ready` taint, and taints (then evicts) a
    node whose heartbeats stop (a frozen or killed agent), as on any cluster.
    """
    core, leases = k8s.CoreV1Api(api), k8s.CoordinationV1Api(api)

    def beat() -> None:
        while not stopping.is_set():
            try:
                _renew_lease(leases)
                core.patch_node_status(NODE_NAME, {"status": {"conditions": [_ready()]}})
            except (ApiException, OSError) as error:  # the API server restarting: try again next beat
                log.warning("node heartbeat failed: %s", error)
            stopping.wait(HEARTBEAT_S)

    thread = threading.Thread(target=beat, name="node-heartbeat", daemon=True)
    thread.start()
    return thread


def _renew_lease(leases: k8s.CoordinationV1Api) -> None:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    spec = {"holderIdentity": NODE_NAME, "leaseDurationSeconds": 40, "renewTime": now}
    body = {"metadata": {"name": NODE_NAME, "namespace": LEASE_NAMESPACE}, "spec": spec}
    try:
        leases.patch_namespaced_lease(NODE_NAME, LEASE_NAMESPACE, {"spec": spec})
    except ApiException as error:
        if error.status != 404:
            raise
        leases.create_namespaced_lease(LEASE_NAMESPACE, body)


def serve(config: KubeletConfig, core: k8s.CoreV1Api, root: Path) -> ThreadingHTTPServer:
    """Start the log endpoint on 127.0.0.1 in a daemon thread."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.cert, config.key)
    context.load_verify_locations(config.client_ca)
    context.verify_mode = ssl.CERT_REQUIRED
    handler = type("Handler", (_LogHandler,), {"core": core, "root": root})
    server = ThreadingHTTPServer(("127.0.0.1", config.port), handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, name="kubelet", daemon=True).start()
    return server


class _LogHandler(BaseHTTPRequestHandler):
    core: k8s.CoreV1Api
    root: Path

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        match = LOG_PATH.match(url.path)
        if match is None:
            self.send_error(404, "only /containerLogs/<namespace>/<pod>/<container> is served")
            return
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        namespace, pod_name, container = match["namespace"], match["pod"], match["container"]
        try:
            pod = self.core.read_namespaced_pod(pod_name, namespace)
        except ApiException as error:
            self.send_error(error.status or 500, f"pod {namespace}/{pod_name}: {error.reason}")
            return
        path = self.root / namespace / f"{pod_name}-{pod.metadata.uid[:8]}" / f"{container}.log"
        if not path.is_file():
            self.send_error(400, f'container "{container}" in pod "{pod_name}" is waiting to start')
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        options = _Options.parse(query)
        with path.open("rb") as stream:
            done = not options.follow or _terminated(self.core, namespace, pod_name, container)
            lines, rest = _split(stream.read(), done)
            if options.tail_lines is not None:
                lines = lines[-options.tail_lines :] if options.tail_lines else []
            self._write(_stamp(lines, path.stat().st_mtime, options), options)
            while not done:  # follow: until the container has exited, then what it wrote last
                time.sleep(FOLLOW_POLL_S)
                done = _terminated(self.core, namespace, pod_name, container)
                lines, rest = _split(rest + stream.read(), done)
                self._write(_stamp(lines, time.time(), options), options)

    def _write(self, lines: list[bytes], options: _Options) -> None:
        data = b"".join(lines)
        if options.limit_bytes is not None:
            data = data[: max(options.limit_bytes - options.written, 0)]
        options.written += len(data)
        self.wfile.write(data)
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("kubelet: " + format, *args)


@dataclass(kw_only=True)
class _Options:
    follow: bool
    timestamps: bool
    tail_lines: int | None
    limit_bytes: int | None
    written: int = 0

    @classmethod
    def parse(cls, query: dict[str, str]) -> _Options:
        tail, limit = query.get("tailLines"), query.get("limitBytes")
        return cls(
            follow=query.get("follow") == "true",
            timestamps=query.get("timestamps") == "true",
            tail_lines=int(tail) if tail else None,
            limit_bytes=int(limit) if limit else None,
        )


def _split(data: bytes, done: bool) -> tuple[list[bytes], bytes]:
    """Whole lines, and the unfinished last one (kept for the next read unless the writer is done)."""
    lines = data.splitlines(keepends=True)
    if lines and not done and not lines[-1].endswith(b"\n"):
        return lines[:-1], lines[-1]
    return lines, b""


def _stamp(lines: list[bytes], last: float, options: _Options) -> list[bytes]:
    if not options.timestamps:
        return lines
    count = len(lines)
    return [_rfc3339(last - (count - 1 - i) * 1e-6) + b" " + line for i, line in enumerate(lines)]


def _rfc3339(seconds: float) -> bytes:
    moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()


def _terminated(core: k8s.CoreV1Api, namespace: str, pod: str, container: str) -> bool:
    """The container has exited (or its pod is finished or gone): nothing more will be written."""
    try:
        status = core.read_namespaced_pod(pod, namespace).status
    except ApiException:
        return True
    if status.phase in ("Succeeded", "Failed"):
        return True
    statuses = [*(status.init_container_statuses or []), *(status.container_statuses or [])]
    return any(s.name == container and s.state and s.state.terminated for s in statuses)
