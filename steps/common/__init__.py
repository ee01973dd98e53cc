"""Code shared by the steps: storage, CLI entry, params base, run layout, errors."""
