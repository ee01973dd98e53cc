"""The inference step: runs an ONNX model over one shard of images."""
