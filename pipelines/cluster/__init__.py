"""A real local Kubernetes control plane for the real Argo engine (`kiosk cluster`, `apply`, `submit`).

etcd, kube-apiserver and Argo's own workflow-controller, built from pinned Go modules into
`.tools/bin` (`.ci/install.d/50-control-plane.sh`), plus `agent`, a node agent standing in for the
kubelet: it runs each pod's containers (Argo's own `argoexec` included) as local processes.
"""
