"""Object detection on top of the model zoo: turning outputs into detections (postprocess.py), scoring them by
the COCO protocol (evaluate.py), preparing images for a detector (preprocess.py), and training them: the
losses (loss.py) with their assigners (assign.py) and auto-anchor for anchor-based models (autoanchor.py)."""
