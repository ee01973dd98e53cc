"""What a pod printed, read from the runner's per-node files: like Argo, the runner records stdout as
`outputs.result` only where the parent steps/DAG template references it, so tests that check what a
pod printed read it here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def printed(run_dir: Path, node: dict[str, Any]) -> str:
    return (run_dir / "nodes" / node["id"] / "stdout").read_text().removesuffix("\n")
