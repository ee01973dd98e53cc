"""Argo output parameters: one small file per parameter under --outputs-dir."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping

from steps.common.errors import StepError


def write_outputs(directory: str, values: Mapping[str, object]) -> None:
    """Write each value (strings as-is, anything else as JSON) atomically to <directory>/<name>."""
    try:
        os.makedirs(directory, exist_ok=True)
        for name, value in values.items():
            text = value if isinstance(value, str) else json.dumps(value)
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.")
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
            os.replace(tmp, os.path.join(directory, name))
    except OSError as error:
        raise StepError(f"cannot write output parameters to --outputs-dir {directory}: {error}") from None
