"""Start, inspect and stop a local control plane: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, workflow-controller, agent, and the S3 emulator holding the local env's artifacts
(`pipelines.cluster.objectstore`).

Everything lives under `<workdir>/cluster/`: keys and tokens (`pki/`), etcd data, logs, `state.json`
(ports and PIDs) and the admin `kubeconfig`. Every port is picked free on 127.0.0.1; the API server
listens on the node IP of `pipelines.cluster.network` (a bridge `up` creates), where pods in their
own network namespaces reach it too, as on any cluster. Each process leads its own process group,
so `down` stops it and everything it started.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import yaml
from kubernetes import client as k8s

from pipelines import project
from pipelines.cluster import bootstrap, dns, network, node, objectstore, optional
from pipelines.cluster.agent.kubelet import NODE_NAME
from pipelines.cluster.pki import etcd_tls
from pipelines.cluster.state import COMPONENTS, ClusterState, cluster_dir, free_port, start_ticks, stop_group
from pipelines.tools import find_tool

BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "workflow-controller",
    "argoexec",
    objectstore.BINARY,
)
#: Components that sign in with a token of their own, as the built-in user RBAC binds their role to.
SYSTEM_USERS = {
    "kube-controller-manager": "system:kube-controller-manager",
    "kube-scheduler": "system:kube-scheduler",
}
#: The real node's (`--with node`): kubelet as its Node user, which the Node authorizer and
#: NodeRestriction confine to its own Node and the pods bound to it; kube-proxy as the user the
#: built-in `system:node-proxier` binding names; CoreDNS as its own, bound to its role when the node
#: starts (`dns.grant`). kubeconfig name -> (user, groups).
NODE_USERS = {
    "node-kubelet": (f"system:node:{node.NAME}", "system:nodes"),
    "kube-proxy": ("system:kube-proxy", ""),
    "coredns": (dns.USER, ""),
}
EXECUTOR_IMAGE = "quay.io/argoproj/argoexec:v4.1.4"
CONTROLLER_NAMESPACE = "argo"
READY_TIMEOUT_S = 60.0


class ClusterError(RuntimeError):
    pass


def binaries() -> dict[str, Path]:
    found = {name: find_tool(name) for name in BINARIES}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        scripts = "25-gofakes3.sh" if missing == [objectstore.BINARY] else "50-control-plane.sh"
        raise ClusterError(f"not installed: {', '.join(missing)}; run `bash .ci/install.d/{scripts}`")
    return {name: path for name, path in found.items() if path is not None}


def running(state: ClusterState) -> dict[str, bool]:
    return {name: state.alive(name) for name in COMPONENTS}


def up(
    workdir: Path | None = None, progress: Callable[[str], None] = lambda _: None, components: Iterable[str] = ()
) -> ClusterState:
    """Start the cluster, then each optional component named (`pipelines.cluster.optional`); a no-op
    for what already runs. A half-running core is restarted; optional components already running stay.
    """
    wanted = optional.select(components)
    state = _up_core(workdir, progress)
    for component in wanted:
        _up_component(state, component, workdir or state.root.parent, progress)
    return state


def _up_core(workdir: Path | None, progress: Callable[[str], None]) -> ClusterState:
    root = cluster_dir(workdir)
    state = ClusterState.load(root)
    alive = running(state)
    if all(alive.values()):
        return state
    if any(alive.values()):
        down(workdir)
    tools = binaries()
    start = time.monotonic()
    root.mkdir(parents=True, exist_ok=True)
    state = ClusterState(root)
    state.logs.mkdir(exist_ok=True)
    state.ports = {
        name: free_port()
        for name in (
            "etcd",
            "etcd-peer",
            "apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "controller-metrics",
            "controller-healthz",
            "kubelet",
        )
    }
    try:
        state.created = [network.BRIDGE] if network.ensure_bridge() else []
        progress("etcd")
        _start(state, "etcd", _etcd_argv(tools["etcd"], state))
        token = _pki(state)
        progress("kube-apiserver")
        _start(state, "kube-apiserver", _apiserver_argv(tools["kube-apiserver"], state))
        _wait_for(state.root / "pki" / "apiserver.crt", state)  # the apiserver writes its serving cert first
        _write_kubeconfig(state.kubeconfig, state, token)
        api = bootstrap.client(state.kubeconfig)
        bootstrap.wait_ready(api, READY_TIMEOUT_S, lambda: _check_alive(state))
        for name in SYSTEM_USERS:
            progress(name)
            _start(state, name, _system_argv(tools[name], name, state))
        progress("CRDs and RBAC")
        controller_token = bootstrap.install(api, CONTROLLER_NAMESPACE, state.ports["controller-metrics"])
        _write_kubeconfig(state.root / "controller.kubeconfig", state, controller_token)
        progress("workflow-controller")
        _start(
            state, "workflow-controller", _controller_argv(tools["workflow-controller"], state), _controller_env(state)
        )
        progress("agent")
        _start(state, "agent", _agent_argv(state, workdir or root.parent), _agent_env())
        bootstrap.wait_controller(api, CONTROLLER_NAMESPACE, READY_TIMEOUT_S, lambda: _check_alive(state))
        bootstrap.wait_schedulable(api, NODE_NAME, READY_TIMEOUT_S, lambda: _check_alive(state))
        _up_objectstore(state, api, tools[objectstore.BINARY], progress)
    except BaseException:
        down(workdir)
        raise
    state.started_s = round(time.monotonic() - start, 2)
    state.save()
    return state


def _up_objectstore(
    state: ClusterState,
    api: k8s.ApiClient,
    binary: Path,
    progress: Callable[[str], None],
) -> None:
    """The S3 emulator on the node IP and the local env's artifact repository on it."""
    progress("S3 emulator")
    store = objectstore.start(state, binary, lambda name, argv: _start(state, name, argv))
    objectstore.install(api, store)


def _up_component(
    state: ClusterState, component: optional.Component, workdir: Path, progress: Callable[[str], None]
) -> None:
    if optional.running(state, component):
        return
    _down_component(state, component)  # what is left of an earlier start
    missing = [name for name in component.binaries if find_tool(name) is None]
    if missing:
        raise ClusterError(f"not installed: {', '.join(missing)}; run `bash {component.install}`")
    progress(component.name)
    context = optional.Context(
        state=state,
        api=bootstrap.client(state.kubeconfig),
        workdir=workdir,
        launch=lambda name, argv, env: _start(state, name, argv, base=env),
        check_alive=lambda: _check_alive(state),
    )
    try:
        component.start(context)
    except BaseException:
        _down_component(state, component)
        raise
    state.save()


def _down_component(state: ClusterState, component: optional.Component) -> list[str]:
    """Stop a component's recorded processes (in reverse start order), then its `cleanup`; the
    names of those that were running. Nothing when it has no process recorded.
    """
    recorded = [name for name in component.processes if name in state.pids]
    if not recorded:
        return []
    stopped = [name for name in reversed(recorded) if state.alive(name)]
    _stop(state, reversed(recorded))
    api = bootstrap.client(state.kubeconfig) if state.alive("kube-apiserver") else None
    component.cleanup(state, api)
    return stopped


def down_components(workdir: Path | None, names: Iterable[str]) -> list[str]:
    """Stop the named optional components only (the core keeps running); the processes stopped."""
    state = ClusterState.load(cluster_dir(workdir))
    return [name for component in optional.select(names) for name in _down_component(state, component)]


def _stop(state: ClusterState, names: Iterable[str]) -> None:
    for name in names:
        entry = state.pids.pop(name, None)
        if entry:
            stop_group(entry[0], entry[1])
    state.save()


def down(workdir: Path | None = None) -> list[str]:
    """Stop every recorded process (optional components, then the agent, ..., etcd last); returns
    the names it stopped.
    """
    state = ClusterState.load(cluster_dir(workdir))
    stopped = [name for component in reversed(optional.started(state)) for name in _down_component(state, component)]
    for name in reversed(COMPONENTS):
        entry = state.pids.get(name)
        if entry:
            if state.alive(name):
                stopped.append(name)
            stop_group(entry[0], entry[1])
    for pid in _strays(state.root):  # processes of this cluster that state.json lost track of
        ticks = start_ticks(pid)
        if ticks is not None:
            stop_group(pid, ticks)
    state.pids = {}
    if network.BRIDGE in state.created and not network.listeners():  # no other cluster's server on it
        network.remove_bridge()
    state.created = []
    if state.path.parent.is_dir():
        state.save()
    return stopped


def _strays(root: Path) -> list[int]:
    """PIDs of our binaries (or the agent) whose command line names this cluster's directory."""
    marker = f"{root}/"
    names = {*BINARIES, *optional.binaries(), "python"}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv if a]
        if words and Path(words[0]).name.rstrip("0123456789.") in names and any(marker in w for w in words[1:]):
            found.append(int(entry.name))
    return found


def _check_alive(state: ClusterState) -> None:
    for name in state.pids:
        if not state.alive(name):
            log = state.logs / f"{name}.log"
            tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log.is_file() else []
            raise ClusterError(f"{name} exited during start; {log}:\n" + "\n".join(tail))


def _wait_for(path: Path, state: ClusterState) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not path.is_file():
        _check_alive(state)
        if time.monotonic() > deadline:
            raise ClusterError(f"{path} did not appear within {READY_TIMEOUT_S:.0f} s")
        time.sleep(0.1)


def _start(
    state: ClusterState,
    name: str,
    argv: list[str],
    env: dict[str, str] | None = None,
    base: Mapping[str, str] | None = None,
) -> None:
    with open(state.logs / f"{name}.log", "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=state.root,
            env={**(os.environ if base is None else base), **(env or {})},
            start_new_session=True,  # its own process group: `down` stops it and its children
        )
    state.record(name, proc.pid)


def _etcd_argv(etcd: Path, state: ClusterState) -> list[str]:
    client = f"https://127.0.0.1:{state.ports['etcd']}"
    peer = f"https://127.0.0.1:{state.ports['etcd-peer']}"
    tls = etcd_tls(state.root / "pki")
    certs = [f"--cert-file={tls.server_cert}", f"--key-file={tls.server_key}", f"--trusted-ca-file={tls.ca}"]
    peer_certs = [f"--peer-cert-file={tls.server_cert}", f"--peer-key-file={tls.server_key}"]
    return [
        str(etcd),
        "--name=kiosk",
        *certs,
        "--client-cert-auth",  # only the API server's certificate (pki.py) is let in
        *peer_certs,
        f"--peer-trusted-ca-file={tls.ca}",
        "--peer-client-cert-auth",
        f"--data-dir={state.root / 'etcd'}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=kiosk={peer}",
        "--log-level=warn",
        "--unsafe-no-fsync",  # a throwaway local store: fsync costs more than the whole test run
    ]


def _pki(state: ClusterState) -> str:
    """The service-account signing key and the admin token (kept across restarts of one workdir)."""
    pki = state.root / "pki"
    pki.mkdir(mode=0o700, exist_ok=True)
    key = pki / "sa.key"
    if not key.is_file():
        subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    serving = (("kubelet", "/CN=kiosk-node", "127.0.0.1"), ("node-kubelet", f"/CN={node.NAME}", network.NODE_IP))
    for name, subject, address in (*serving, ("kubelet-client", "/CN=kube-apiserver-kubelet-client", "127.0.0.1")):
        _self_signed(pki / name, subject, address)
    # The API server checks either node's serving certificate (the agent's and the real kubelet's).
    (pki / "kubelet-ca.crt").write_text("".join((pki / f"{name}.crt").read_text() for name, _, _ in serving))
    tokens = pki / "tokens.csv"
    if not tokens.is_file():
        tokens.write_text(f"{secrets.token_hex(24)},kiosk-admin,kiosk-admin,system:masters\n")
        tokens.chmod(0o600)
    known = {line.split(",")[1]: line.split(",")[0] for line in tokens.read_text().splitlines() if line}
    users = {component: (user, "") for component, user in SYSTEM_USERS.items()} | NODE_USERS
    for component, (user, groups) in users.items():  # SYSTEM_USERS: no group, the built-in bindings name the user
        if user not in known:
            known[user] = secrets.token_hex(24)
            with tokens.open("a") as out:
                out.write(f"{known[user]},{user},{user}" + (f",{groups}" if groups else "") + "\n")
        _write_kubeconfig(state.root / f"{component}.kubeconfig", state, known[user])
    return known["kiosk-admin"]


def node_identity(state: ClusterState) -> node.NodeIdentity:
    """The real node's kubeconfigs and kubelet's serving certificate, written by `up` (`_pki`)."""
    pki = state.root / "pki"
    return node.NodeIdentity(
        kubelet_kubeconfig=state.root / "node-kubelet.kubeconfig",
        proxy_kubeconfig=state.root / "kube-proxy.kubeconfig",
        dns_kubeconfig=state.root / "coredns.kubeconfig",
        serving_cert=pki / "node-kubelet.crt",
        serving_key=pki / "node-kubelet.key",
        client_ca=pki / "kubelet-client.crt",
    )


def _self_signed(stem: Path, subject: str, address: str) -> None:
    """A self-signed certificate for `address` and its key (each its own CA: only one peer ever
    trusts each).
    """
    if stem.with_suffix(".crt").is_file():
        return
    argv = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650", "-subj", subject]
    argv += ["-keyout", str(stem.with_suffix(".key")), "-out", str(stem.with_suffix(".crt"))]
    argv += ["-addext", f"subjectAltName=IP:{address}"]
    subprocess.run(argv, check=True, capture_output=True)


def _apiserver_argv(apiserver: Path, state: ClusterState) -> list[str]:
    pki = state.root / "pki"
    etcd = etcd_tls(pki)
    return [
        str(apiserver),
        f"--etcd-servers=https://127.0.0.1:{state.ports['etcd']}",
        f"--etcd-cafile={etcd.ca}",
        f"--etcd-certfile={etcd.client_cert}",
        f"--etcd-keyfile={etcd.client_key}",
        # The node IP, not 0.0.0.0: reachable from pods (the `kubernetes` Service's endpoint), never
        # from off the machine.
        f"--bind-address={network.NODE_IP}",
        f"--advertise-address={network.NODE_IP}",
        f"--secure-port={state.ports['apiserver']}",
        f"--cert-dir={pki}",
        f"--service-cluster-ip-range={network.SERVICE_CIDR}",
        "--service-account-issuer=https://kubernetes.default.svc",
        f"--service-account-key-file={pki / 'sa.key'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        f"--token-auth-file={pki / 'tokens.csv'}",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        # pods/log goes to the node's log endpoint (the agent's, agent/kubelet.py, or the real
        # kubelet's), TLS checked both ways
        f"--kubelet-certificate-authority={pki / 'kubelet-ca.crt'}",
        f"--kubelet-client-certificate={pki / 'kubelet-client.crt'}",
        f"--kubelet-client-key={pki / 'kubelet-client.key'}",
        "--kubelet-preferred-address-types=InternalIP",
        "--v=1",
    ]


def _system_argv(binary: Path, name: str, state: ClusterState) -> list[str]:
    """kube-controller-manager or kube-scheduler: one of each (no leader election), serving its
    health and metrics on 127.0.0.1 only, signed in with its own token (SYSTEM_USERS).
    """
    pki = state.root / "pki"
    argv = [
        str(binary),
        f"--kubeconfig={state.root / f'{name}.kubeconfig'}",
        "--bind-address=127.0.0.1",
        f"--secure-port={state.ports[name]}",
        "--leader-elect=false",
        "--v=1",
    ]
    if name == "kube-scheduler":
        return argv
    return [
        *argv,
        f"--service-account-private-key-file={pki / 'sa.key'}",
        f"--root-ca-file={pki / 'apiserver.crt'}",  # kube-root-ca.crt in every namespace
        "--use-service-account-credentials",  # each controller acts as its own ServiceAccount
    ]


def _write_kubeconfig(path: Path, state: ClusterState, token: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "kiosk-local",
                "cluster": {
                    "server": api_url(state),
                    "certificate-authority": str(state.root / "pki" / "apiserver.crt"),
                },
            }
        ],
        "users": [{"name": path.stem, "user": {"token": token}}],
        "contexts": [{"name": "kiosk-local", "context": {"cluster": "kiosk-local", "user": path.stem}}],
        "current-context": "kiosk-local",
    }
    tmp = path.with_suffix(".partial")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    tmp.chmod(0o600)
    tmp.replace(path)


def _controller_argv(controller: Path, state: ClusterState) -> list[str]:
    return [
        str(controller),
        f"--kubeconfig={state.root / 'controller.kubeconfig'}",
        f"--namespace={CONTROLLER_NAMESPACE}",
        f"--executor-image={EXECUTOR_IMAGE}",
        "--configmap=workflow-controller-configmap",
        "--loglevel=info",
    ]


def _controller_env(state: ClusterState) -> dict[str, str]:
    # Out of a cluster there is no pod to elect a leader among: one controller, no lease.
    # DEFAULT_REQUEUE_TIME: how soon a workflow is looked at again (10 s by default); Argo's own e2e
    # tests run with 1 s too. KIOSK_CONTROLLER_HEALTHZ_ADDRESS: our build's bind of /healthz
    # (upstream hard-codes :6060 on every interface).
    return {
        "LEADER_ELECTION_DISABLE": "true",
        "DEFAULT_REQUEUE_TIME": "1s",
        "KIOSK_CONTROLLER_HEALTHZ_ADDRESS": f"127.0.0.1:{state.ports['controller-healthz']}",
    }


def api_url(state: ClusterState) -> str:
    return f"https://{network.NODE_IP}:{state.ports['apiserver']}"


def metrics_url(state: ClusterState) -> str:
    """Where the controller serves its Prometheus metrics (template metrics included)."""
    return f"http://127.0.0.1:{state.ports['controller-metrics']}{bootstrap.METRICS_PATH}"


def _agent_argv(state: ClusterState, workdir: Path) -> list[str]:
    pki = state.root / "pki"
    return [
        sys.executable,
        "-m",
        "pipelines.cluster.agent",
        f"--kubeconfig={state.kubeconfig}",
        f"--workdir={workdir}",
        f"--root={state.root / 'pods'}",
        f"--kubelet-port={state.ports['kubelet']}",
        f"--kubelet-cert={pki / 'kubelet.crt'}",
        f"--kubelet-key={pki / 'kubelet.key'}",
        f"--kubelet-client-ca={pki / 'kubelet-client.crt'}",
    ]


def _agent_env() -> dict[str, str]:
    """The agent runs from the cluster's directory: it finds our packages, and the checkout's
    `.tools/bin` (argoexec) when there is one, through these rather than its working directory.
    """
    env = {"PYTHONPATH": os.pathsep.join([str(project.PACKAGES_DIR), *filter(None, [os.environ.get("PYTHONPATH")])])}
    home = os.environ.get(project.HOME_VARIABLE) or project.find_root()
    return {**env, project.HOME_VARIABLE: str(home)} if home else env
