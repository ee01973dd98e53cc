"""Run one pod: init containers in order, then the others together; report status as a kubelet does."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from pipelines import project
from pipelines.cluster.agent import volumes
from pipelines.cluster.agent.env import EnvError, Resolver, expand

#: Longest grace a deleted pod's processes get before SIGKILL (terminationGracePeriodSeconds caps it).
MAX_GRACE_S = 10.0
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Config:
    """What every pod of this agent shares."""

    def __init__(self, api: k8s.ApiClient, workdir: Path, root: Path) -> None:
        self.api = api
        self.core = k8s.CoreV1Api(api)
        self.workdir = workdir
        self.root = root
        host = api.configuration.host.removeprefix("https://")
        self.api_host, _, self.api_port = host.rpartition(":")
        ca_file = api.configuration.ssl_ca_cert
        self.ca = Path(ca_file).read_text() if ca_file else ""
        self.tools_bin = project.tools_bin()

    def base_env(self, pod: Any) -> dict[str, str]:
        tools = [str(self.tools_bin)] if self.tools_bin else []
        path = os.pathsep.join([str(Path(sys.executable).parent), *tools, "/usr/local/bin", "/usr/bin", "/bin"])
        return {
            "PATH": path,
            "HOME": "/tmp",
            "HOSTNAME": pod.metadata.name,
            "KUBERNETES_SERVICE_HOST": self.api_host,
            "KUBERNETES_SERVICE_PORT": self.api_port,
            "PYTHONPATH": str(project.PACKAGES_DIR),
            "PYTHONUNBUFFERED": "1",
            "KIOSK_WORKDIR": str(self.workdir),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
        }


class PodRun(threading.Thread):
    def __init__(self, config: Config, pod: Any) -> None:
        super().__init__(daemon=True, name=f"pod-{pod.metadata.name}")
        self.config = config
        self.pod = pod
        self.dir = config.root / pod.metadata.namespace / f"{pod.metadata.name}-{pod.metadata.uid[:8]}"
        self.procs: dict[str, subprocess.Popen] = {}
        self.lock = threading.Lock()
        self.deleted = threading.Event()
        self.status: dict[str, Any] = {"phase": "Pending", "hostIP": "127.0.0.1", "podIP": "127.0.0.1"}
        self.container_status: dict[str, dict[str, Any]] = {}

    # -- lifecycle -------------------------------------------------------------------------
    def run(self) -> None:
        try:
            self._run()
        except Exception as error:  # the pod fails with the reason, as CreateContainerConfigError would
            self._finish("Failed", f"{type(error).__name__}: {error}", reason="Error")
        finally:
            self.kill()
            shutil.rmtree(self.dir / "volumes", ignore_errors=True)  # argoexec copies itself there (~150 MB)

    def _run(self) -> None:
        spec = self.pod.spec
        resolver = Resolver(self.config.core, self.pod)
        token = self._token()
        vols = volumes.materialize(self.pod, resolver, self.dir, token, self.config.ca)
        self.status["startTime"] = now()
        for container in spec.init_containers or []:
            self.container_status[container.name] = _waiting(container)
        for container in spec.containers:
            self.container_status[container.name] = _waiting(container)
        self._set_phase("Pending")
        deadline = None
        if spec.active_deadline_seconds is not None:
            deadline = time.monotonic() + spec.active_deadline_seconds
        for container in spec.init_containers or []:
            code = self._wait_all([self._start(container, resolver, vols)], deadline)
            if self.deleted.is_set():
                return
            if code is None:
                self._finish("Failed", DEADLINE_MESSAGE, reason="DeadlineExceeded")
                return
            if code != 0:
                self._finish("Failed", f"init container {container.name!r} exited with {code}")
                return
        started = [self._start(c, resolver, vols) for c in spec.containers]
        self._set_phase("Running")
        code = self._wait_all(started, deadline)
        if self.deleted.is_set():
            return
        if code is None:
            self._finish("Failed", DEADLINE_MESSAGE, reason="DeadlineExceeded")
        else:
            failed = [n for n, s in self.container_status.items() if s["state"].get("terminated", {}).get("exitCode")]
            self._finish("Failed" if failed else "Succeeded", "")

    def kill(self) -> None:
        """SIGTERM every process group of the pod, SIGKILL after the grace period."""
        with self.lock:
            procs = [p for p in self.procs.values() if p.poll() is None]
        if not procs:
            return
        grace = self.pod.spec.termination_grace_period_seconds
        grace = MAX_GRACE_S if grace is None else min(float(grace), MAX_GRACE_S)
        for proc in procs:
            _killpg(proc.pid, signal.SIGTERM)
        end = time.monotonic() + grace
        while time.monotonic() < end and any(p.poll() is None for p in procs):
            time.sleep(0.1)
        for proc in procs:
            _killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def on_deleted(self) -> None:
        self.deleted.set()
        threading.Thread(target=self.kill, daemon=True).start()

    # -- containers ------------------------------------------------------------------------
    def _token(self) -> str | None:
        from pipelines.cluster.bootstrap import service_account_token

        if self.pod.spec.automount_service_account_token is False and not _projects_token(self.pod):
            return None
        account = self.pod.spec.service_account_name
        if not account:  # no ServiceAccount admission here to fill in "default": a token not bound to the pod
            return service_account_token(self.config.api, self.pod.metadata.namespace, "default", 3600)
        return service_account_token(self.config.api, self.pod.metadata.namespace, account, 3600, self.pod)

    def _start(self, container: Any, resolver: Resolver, vols: dict[str, Path]) -> str:
        env = resolver.container_env(container, self.config.base_env(self.pod))
        argv = [expand(str(a), env) for a in [*(container.command or []), *(container.args or [])]]
        if not container.command:
            raise EnvError(f"container {container.name!r} has no command: image entrypoints are unknown here")
        tools = [self.config.tools_bin.parent] if self.config.tools_bin else []
        keep = [self.config.workdir, project.PACKAGES_DIR, Path(sys.prefix), Path(sys.base_prefix), *tools]
        automount = self.pod.spec.automount_service_account_token is not False
        hide = (self.config.root.parent,)  # the cluster's directory: pki, kubeconfigs, etcd, every pod's secrets
        script = volumes.mount_script(container, vols, self.dir / "containers" / container.name, keep, automount, hide)
        script.append('exec "$@"')
        userns = ["--user", "--map-root-user"] if os.geteuid() != 0 else []
        wrapped = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            *userns,
            "--",
            "sh",
            "-c",
            "\n".join(script),
            "kiosk-pod",
        ]
        log = self.dir / f"{container.name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [*wrapped, *argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.dir / "containers" / container.name / "work",
                env=env,
                start_new_session=True,
            )
        with self.lock:
            self.procs[container.name] = proc
        started = now()
        self.container_status[container.name].update(state={"running": {"startedAt": started}}, started=True)
        self.container_status[container.name]["_startedAt"] = started
        self._report()
        return container.name

    def _wait_all(self, names: list[str], deadline: float | None) -> int | None:
        """Wait for the named containers; the worst exit code, or None when the deadline passed."""
        pending, worst = set(names), 0
        while pending:
            for name in sorted(pending):
                code = self.procs[name].poll()
                if code is not None:
                    pending.discard(name)
                    code = 128 - code if code < 0 else code  # killed by a signal: 128 + signal, as a runtime reports
                    worst = worst or code
                    self._terminated(name, code)
            if pending and deadline is not None and time.monotonic() > deadline:
                self.kill()
                for name in sorted(pending):
                    self._terminated(name, 137, reason="DeadlineExceeded")
                return None
            if pending:
                time.sleep(0.05)
        return worst

    def _terminated(self, name: str, code: int, reason: str | None = None) -> None:
        status = self.container_status[name]
        status["state"] = {
            "terminated": {
                "exitCode": code,
                "reason": reason or ("Completed" if code == 0 else "Error"),
                "startedAt": status.get("_startedAt") or now(),
                "finishedAt": now(),
            }
        }
        status["ready"] = False
        status["started"] = False
        self._report()

    # -- status ----------------------------------------------------------------------------
    def _set_phase(self, phase: str) -> None:
        self.status["phase"] = phase
        self._report()

    def _finish(self, phase: str, message: str, reason: str | None = None) -> None:
        self.status["phase"] = phase
        if message:
            self.status["message"] = message
        if reason:
            self.status["reason"] = reason
        for status in self.container_status.values():
            if "terminated" not in status["state"]:
                code = 137 if reason == "DeadlineExceeded" else 1
                status["state"] = {"terminated": {"exitCode": code, "reason": reason or "Error", "finishedAt": now()}}
        self._report()

    def _report(self) -> None:
        if self.deleted.is_set():
            return
        init_names = {c.name for c in self.pod.spec.init_containers or []}
        clean = {n: {k: v for k, v in s.items() if not k.startswith("_")} for n, s in self.container_status.items()}
        body = {
            **self.status,
            "initContainerStatuses": [clean[n] for n in clean if n in init_names],
            "containerStatuses": [clean[n] for n in clean if n not in init_names],
        }
        try:
            self.config.core.patch_namespaced_pod_status(
                self.pod.metadata.name, self.pod.metadata.namespace, {"status": body}
            )
        except ApiException as error:
            if error.status == 404:  # deleted meanwhile
                self.on_deleted()
                return
            raise


def _waiting(container: Any) -> dict[str, Any]:
    return {
        "name": container.name,
        "image": container.image or "",
        "imageID": "",
        "ready": False,
        "restartCount": 0,
        "started": False,
        "state": {"waiting": {"reason": "PodInitializing"}},
    }


def _projects_token(pod: Any) -> bool:
    for volume in pod.spec.volumes or []:
        for source in (volume.projected.sources if volume.projected else None) or []:
            if source.service_account_token is not None:
                return True
    return False


def _killpg(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
