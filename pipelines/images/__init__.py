"""The project's own images, built on this machine: `kiosk images build` (buildah + mmdebstrap).

`catalog` says which images and under which references, `recipes` how each kind is made,
`build` skips what is current and exports OCI archives to `.tools/images/` (`archive`), and
`bundle` unpacks one into a runc bundle (the tests run step containers with it).
"""
