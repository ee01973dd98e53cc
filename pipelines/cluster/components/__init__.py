"""The optional components of the local cluster, one module each (see pipelines/cluster/optional.py)."""
