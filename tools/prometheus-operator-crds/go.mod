// Pins the Prometheus operator module whose example/prometheus-operator-crd/ gives the shape of
// PrometheusRule (monitoring.coreos.com/v1), read by pipelines/lint/crds.py from the module cache.
// Not built.
module github.com/kiosk-pipelines/kiosk-pipelines/tools/prometheus-operator-crds

go 1.26

require github.com/prometheus-operator/prometheus-operator v0.85.0
