"""Checks before a server is launched: will the model fit the memory (fit), will the
workload's longest request fit one slot's context (context). Each refuses with one line."""
