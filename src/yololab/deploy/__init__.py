"""Running a trained detector fast: the CPU execution modes (runtime.py) and ONNX export (export.py)."""
