// Pins the argo-cd module whose manifests/crds/ give the shape of AppProject and Application
// (read by pipelines/lint/crds.py from the module cache; nothing is vendored). Not built.
module github.com/kiosk-pipelines/kiosk-pipelines/tools/argocd-crds

go 1.26.5

require github.com/argoproj/argo-cd/v3 v3.5.7
