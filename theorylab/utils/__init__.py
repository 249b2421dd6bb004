"""Shared helpers for every topic module: input validation (`validation`, one vocabulary of errors),
small statistics the chapters share (`stats`: log-log slopes, McNemar's test, paired z statistics, means
with their standard errors), numerical routines (`numerics`: batched L-BFGS, Lanczos) and thread limits
for small CPU work (`threads.single_threaded`)."""
