"""The publish-model step: checks an ONNX model and publishes it to the model repository."""
