"""Weights on disk: yololab's own checkpoints (native.py), Ultralytics / yolov5 ``.pt`` files read without their
packages (reference.py), Darknet ``.weights`` (darknet.py), and the format sniffing and loading that
``build_model(name, weights=...)`` uses (load.py); convert.py turns any of them into a yololab checkpoint."""
