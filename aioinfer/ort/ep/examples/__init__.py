"""Example plugin EP libraries (see :mod:`.fused_elementwise`)."""
