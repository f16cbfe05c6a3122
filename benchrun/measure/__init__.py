"""From records to numbers: per-request metric functions (metrics), a metric's summary over
requests (summaries), why requests failed (failures), the one metric catalogue every reader
uses (catalogue) and how readers see it (views), statistics across repeats and goodput (stats),
and what is measured beside the load: the machine (hardware), the server's /metrics
(promscrape), and the sampler of memory, energy and CPU (telemetry) with what its samples sum
to (footprint)."""
