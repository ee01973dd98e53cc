"""Optional components of the local cluster, started by `kiosk cluster up --with NAME[,NAME...]`.

Each one is a module in `pipelines/cluster/components/` exposing `COMPONENT` (a `Component`):
discovered, never listed, so a new one is a new file. A component starts its processes through
`Context.launch`, which records them in `state.json` like the core's, so `status` shows them and
`down` stops them (before the core), then calls the component's `cleanup`. A plain `up` starts none,
and leaves running the ones an earlier `up --with` started.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client as k8s

from pipelines.cluster import components
from pipelines.cluster.state import ClusterState


@dataclass(frozen=True, kw_only=True)
class Context:
    """What a component's `start` gets: the running core and a way to start recorded processes."""

    state: ClusterState  # ports (add yours: state.ports[name] = free_port()), root, logs
    api: k8s.ApiClient  # the admin client
    workdir: Path  # the cluster's workdir (pods see it as KIOSK_WORKDIR)
    #: launch(name, argv, env): start a process group, logged to logs/<name>.log, recorded under
    #: `name` (one of the component's `processes`). `env` is its whole environment.
    launch: Callable[[str, list[str], Mapping[str, str]], None]
    #: raises ClusterError, with the log's tail, when a recorded process has exited
    check_alive: Callable[[], None]


@dataclass(frozen=True, kw_only=True)
class Component:
    name: str  # what `--with` takes
    summary: str  # one line for `kiosk cluster up --help`
    processes: tuple[str, ...]  # its names in state.pids, in start order (down stops them in reverse)
    binaries: tuple[str, ...]  # the tools it runs (pipelines.tools.find_tool names)
    install: str  # the script that builds them, named when one is missing
    start: Callable[[Context], None]  # returns once the component serves; raise to fail `up`
    #: the exports `kiosk cluster env` prints while it runs
    env: Callable[[ClusterState], dict[str, str]] = field(default=lambda _: {})
    #: the lines `kiosk cluster status` prints under the table while it runs (its URLs)
    describe: Callable[[ClusterState], list[str]] = field(default=lambda _: [])
    #: called by `down` after its processes stopped, with the admin client while the API server
    #: still runs (None when it does not): remove what they leave on the host and in the API
    cleanup: Callable[[ClusterState, k8s.ApiClient | None], None] = field(default=lambda _s, _a: None)


def registry() -> dict[str, Component]:
    """Every component in `pipelines/cluster/components/`, by name."""
    found: dict[str, Component] = {}
    for info in sorted(pkgutil.iter_modules(components.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        component = importlib.import_module(f"{components.__name__}.{info.name}").COMPONENT
        found[component.name] = component
    return found


def select(names: Iterable[str]) -> list[Component]:
    """The named components in the order given (`--with a,b` and `--with a --with b` alike)."""
    known = registry()
    wanted = [n.strip() for name in names for n in name.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ValueError(f"unknown component {', '.join(unknown)}; known: {', '.join(known) or 'none'}")
    return [known[n] for n in dict.fromkeys(wanted)]


def started(state: ClusterState) -> list[Component]:
    """The components with a process recorded in this cluster's state (running or not)."""
    return [c for c in registry().values() if any(p in state.pids for p in c.processes)]


def running(state: ClusterState, component: Component) -> bool:
    return all(state.alive(p) for p in component.processes)


def binaries() -> set[str]:
    return {b for c in registry().values() for b in c.binaries}
