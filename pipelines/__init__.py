"""Orchestration side: Hera templates, rendering, lint, the local runner and the `kiosk` CLI."""
