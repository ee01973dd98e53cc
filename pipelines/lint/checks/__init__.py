"""One module per lint check run by `kiosk lint` over the rendered manifests."""
