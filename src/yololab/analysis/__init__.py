"""Looking inside a detector: per-block shapes, parameters and FLOPs from one traced forward pass (summary.py),
and the architecture diagrams drawn from it (diagrams.py)."""
