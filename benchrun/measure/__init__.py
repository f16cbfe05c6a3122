"""From records to numbers: per-request metric functions (metrics), the one metric catalogue
every reader uses (catalogue), statistics across repeats and goodput (stats), and what is
measured beside the load: the machine (hardware), the server's /metrics (promscrape), memory,
energy and CPU (telemetry)."""
