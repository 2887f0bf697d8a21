"""yololab: study, train and compare real-time vision models."""

__version__ = "0.1.0"
