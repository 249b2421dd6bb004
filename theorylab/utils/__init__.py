"""Shared helpers for every topic module: input validation (one vocabulary of errors)."""
