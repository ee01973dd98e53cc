"""A container's environment, resolved as the kubelet does: values, `$(VAR)` references, fieldRef,
resourceFieldRef, ConfigMap and Secret keys (`valueFrom` and `envFrom`).
"""

from __future__ import annotations

import base64
import math
import re
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


class EnvError(RuntimeError):
    """A reference that cannot be resolved: the pod fails with this message (CreateContainerConfigError)."""


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion: defined names are replaced, `$$` escapes, others stay literal."""

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _REF.sub(sub, text)


class Resolver:
    def __init__(self, core: k8s.CoreV1Api, pod: Any) -> None:
        self.core = core
        self.pod = pod
        self.namespace = pod.metadata.namespace
        self._configmaps: dict[str, dict[str, str] | None] = {}
        self._secrets: dict[str, dict[str, str] | None] = {}

    def configmap(self, name: str) -> dict[str, str] | None:
        if name not in self._configmaps:
            try:
                found = self.core.read_namespaced_config_map(name, self.namespace)
                self._configmaps[name] = dict(found.data or {})
            except ApiException as error:
                if error.status != 404:
                    raise
                self._configmaps[name] = None
        return self._configmaps[name]

    def secret(self, name: str) -> dict[str, str] | None:
        if name not in self._secrets:
            try:
                found = self.core.read_namespaced_secret(name, self.namespace)
                data = {k: base64.b64decode(v).decode(errors="replace") for k, v in (found.data or {}).items()}
                self._secrets[name] = data
            except ApiException as error:
                if error.status != 404:
                    raise
                self._secrets[name] = None
        return self._secrets[name]

    def container_env(self, container: Any, base: dict[str, str]) -> dict[str, str]:
        env = dict(base)
        for source in container.env_from or []:
            env.update(self._env_from(source))
        for var in container.env or []:
            if var.value_from is None:
                env[var.name] = expand(var.value or "", env)
                continue
            value = self._value_from(var.name, var.value_from, container)
            if value is not None:
                env[var.name] = value
        return env

    def _env_from(self, source: Any) -> dict[str, str]:
        prefix = source.prefix or ""
        if source.config_map_ref is not None:
            ref, data = source.config_map_ref, self.configmap(source.config_map_ref.name)
            kind = "configmap"
        else:
            ref, data = source.secret_ref, self.secret(source.secret_ref.name)
            kind = "secret"
        if data is None:
            if ref.optional:
                return {}
            raise EnvError(f"{kind} {ref.name!r} not found")
        return {prefix + k: v for k, v in data.items()}

    def _value_from(self, name: str, source: Any, container: Any) -> str | None:
        if source.field_ref is not None:
            return self.field(source.field_ref.field_path)
        if source.resource_field_ref is not None:
            return self.resource(source.resource_field_ref, container)
        ref = source.config_map_key_ref or source.secret_key_ref
        kind = "configmap" if source.config_map_key_ref is not None else "secret"
        data = self.configmap(ref.name) if kind == "configmap" else self.secret(ref.name)
        if data is None or ref.key not in data:
            if ref.optional:
                return None
            what = f"{kind} {ref.name!r}" if data is None else f"key {ref.key!r} in {kind} {ref.name!r}"
            raise EnvError(f"env {name}: {what} not found")
        return data[ref.key]

    def field(self, path: str) -> str:
        meta, spec = self.pod.metadata, self.pod.spec
        simple = {
            "metadata.name": meta.name,
            "metadata.namespace": meta.namespace,
            "metadata.uid": meta.uid,
            "spec.nodeName": spec.node_name or "kiosk-local",
            "spec.serviceAccountName": spec.service_account_name or "default",
            "status.hostIP": "127.0.0.1",
            "status.podIP": "127.0.0.1",
            "status.podIPs": "127.0.0.1",
            "status.hostIPs": "127.0.0.1",
        }
        if path in simple:
            return str(simple[path])
        match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
        if match:
            values = (meta.labels if match.group(1) == "labels" else meta.annotations) or {}
            return str(values.get(match.group(2), ""))
        if path in {"metadata.labels", "metadata.annotations"}:
            values = (meta.labels if path == "metadata.labels" else meta.annotations) or {}
            return "\n".join(f'{k}="{v}"' for k, v in sorted(values.items()))
        raise EnvError(f"fieldRef {path!r} is not supported")

    @staticmethod
    def resource(ref: Any, container: Any) -> str:
        kind, _, resource = ref.resource.partition(".")
        resources = container.resources
        values = (resources.limits if kind == "limits" else resources.requests) if resources else None
        raw = (values or {}).get(resource)
        if raw is None:
            return "0" if kind == "requests" else {"cpu": "2", "memory": str(2**34)}.get(resource, "0")
        divisor = _quantity(ref.divisor or "1")
        return str(math.ceil(_quantity(raw) / divisor))


_SUFFIX = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def _quantity(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(text))
    if not match:
        raise EnvError(f"quantity {text!r} is not valid")
    return float(match.group(1)) * _SUFFIX.get(match.group(2), 1.0)
