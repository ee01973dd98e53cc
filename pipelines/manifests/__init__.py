"""Builders of the plain Kubernetes and ArgoCD objects `kiosk render` writes beside the workflows.

`k8s_objects` (ServiceAccount, executor RBAC, artifact repository), `gitops` (the AppProject and
Applications of `argocd/apps/`) and `capacity` (GPU node pools and time-slicing). The Argo
objects are built in `pipelines/templates/`, the dashboards and alert rules in
`pipelines/observability/`.
"""
