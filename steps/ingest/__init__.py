"""The ingest step: lists new inputs and writes the shard manifests for inference."""
