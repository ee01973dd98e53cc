"""The local runner behind `kiosk run`: runs rendered Argo manifests on one machine."""
