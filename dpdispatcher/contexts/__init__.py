"""Contexts: how files and commands reach the execution side."""
