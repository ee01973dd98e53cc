"""The benchmark step: runs, Prometheus cost queries, regression checks and the HTML report."""
