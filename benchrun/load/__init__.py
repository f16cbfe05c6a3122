"""Driving the load: the streaming HTTP client (client, sse), the engine that runs
conversations at a concurrency or rate (engine), the per-request record it writes (records),
and live progress (progress). Integer-ns timers; no metric is computed here."""
