"""Box operations every task shares: format conversions and IoU (boxes.py), non-maximum suppression (nms.py)."""
