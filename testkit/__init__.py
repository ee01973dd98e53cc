"""Real components that both the tests and the benchmarks build on: a fault-injecting S3 proxy and
small ONNX models with images of known content.

It sits beside `tests/` and `benchmarks/` so that both import it and neither imports the other (a
test checks it); it imports nothing from either. It is not shipped in the wheel: the installed
`kiosk` commands never need it.
"""
