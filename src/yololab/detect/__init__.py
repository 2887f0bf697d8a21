"""Object detection on top of the model zoo: turning outputs into detections (postprocess.py), scoring them by
the COCO protocol (evaluate.py), and preparing images for a detector (preprocess.py)."""
