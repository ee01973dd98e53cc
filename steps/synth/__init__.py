"""The synthetic-data step: renders labelled test images into a store."""
