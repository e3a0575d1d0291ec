"""kvstoremesh."""
