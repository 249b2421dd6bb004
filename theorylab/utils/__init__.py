"""Shared helpers for every topic module: input validation (one vocabulary of errors) and thread
limits for small CPU work (`threads.single_threaded`)."""
