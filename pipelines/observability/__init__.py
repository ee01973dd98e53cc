"""Operations: Grafana dashboards and Prometheus alert rules, rendered into `argocd/observability/<env>/`.

Every metric name comes from `steps.common.metric_names`, the module the emitters use too.
"""
