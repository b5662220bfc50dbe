"""Batch types: one module per scheduler, each supplying pure hooks to the Machine base."""
