"""The synthetic-data step: draws labelled test images into a store."""
