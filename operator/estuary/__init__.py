"""Estuary: runs AI training jobs across heterogeneous accelerator pools and partner clusters."""

__version__ = "0.1.0"
