"""`python -m pipelines.cluster.agent --kubeconfig K --workdir W --root R`: the node agent's loop.

It lists the pods kube-scheduler bound to its Node, then watches from that resourceVersion
(relisting when the watch expires). A Pending pod it has not seen starts a PodRun; a deleted pod has
its processes killed. With `--kubelet-port` it registers that Node and serves pod logs (kubelet.py).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from pipelines.cluster.agent import kubelet
from pipelines.cluster.agent.pod import Config, PodRun

log = logging.getLogger("kiosk-agent")
#: The pods kube-scheduler bound to this agent's Node: what a kubelet runs.
ON_THIS_NODE = f"spec.nodeName={kubelet.NODE_NAME}"


class Agent:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.runs: dict[str, PodRun] = {}
        self.stopping = threading.Event()

    def handle(self, kind: str, pod: Any) -> None:
        uid = pod.metadata.uid
        if kind == "DELETED" or pod.metadata.deletion_timestamp is not None:
            run = self.runs.pop(uid, None)
            if run is not None:
                log.info("pod %s/%s deleted: killing its processes", pod.metadata.namespace, pod.metadata.name)
                run.on_deleted()
            if kind != "DELETED" and pod.metadata.deletion_timestamp is not None:
                _delete_now(self.config.core, pod)  # what a kubelet does once the processes are gone
            return
        phase = pod.status.phase if pod.status else None
        if uid in self.runs or phase not in (None, "Pending") or (pod.status and pod.status.start_time):
            return
        log.info("pod %s/%s: starting", pod.metadata.namespace, pod.metadata.name)
        run = PodRun(self.config, pod)
        self.runs[uid] = run
        run.start()

    def loop(self) -> None:
        core = self.config.core
        while not self.stopping.is_set():
            listed = core.list_pod_for_all_namespaces(field_selector=ON_THIS_NODE)
            for pod in listed.items:
                self.handle("ADDED", pod)
            version = listed.metadata.resource_version
            try:
                for event in watch.Watch().stream(
                    core.list_pod_for_all_namespaces,
                    field_selector=ON_THIS_NODE,
                    resource_version=version,
                    timeout_seconds=30,
                ):
                    self.handle(event["type"], event["object"])
                    if self.stopping.is_set():
                        break
            except ApiException as error:
                if error.status != 410:  # 410 Gone: the version expired, relist
                    raise
            for uid, run in list(self.runs.items()):
                if not run.is_alive():
                    self.runs.pop(uid, None)

    def shutdown(self, *_: object) -> None:
        self.stopping.set()
        for run in list(self.runs.values()):
            run.on_deleted()
        for run in list(self.runs.values()):
            run.join(timeout=15)
        sys.exit(0)


def _delete_now(core: k8s.CoreV1Api, pod: Any) -> None:
    try:
        core.delete_namespaced_pod(pod.metadata.name, pod.metadata.namespace, grace_period_seconds=0)
    except ApiException as error:
        if error.status != 404:
            raise


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="kiosk-agent")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--kubelet-port", type=int, help="serve pod logs here, as a kubelet (127.0.0.1)")
    parser.add_argument("--kubelet-cert", type=Path, help="its TLS certificate and key")
    parser.add_argument("--kubelet-key", type=Path)
    parser.add_argument("--kubelet-client-ca", type=Path, help="what the API server's client certificate chains to")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    api = k8s_config.new_client_from_config(args.kubeconfig)
    config = Config(api, args.workdir.resolve(), args.root.resolve())
    if args.kubelet_port:
        tls = {"cert": args.kubelet_cert, "key": args.kubelet_key, "client_ca": args.kubelet_client_ca}
        kubelet.serve(kubelet.KubeletConfig(port=args.kubelet_port, **tls), config.core, config.root)
        kubelet.register_node(config.core, args.kubelet_port)
    agent = Agent(config)
    kubelet.heartbeat(api, agent.stopping)
    signal.signal(signal.SIGTERM, agent.shutdown)
    signal.signal(signal.SIGINT, agent.shutdown)
    agent.loop()


if __name__ == "__main__":
    main()
