"""The report step: merges per-shard results into the run summary."""
