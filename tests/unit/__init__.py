"""The fast tier: no server, no subprocess, no socket, no real llama.cpp; runs in well under a
minute (`uv run pytest tests/unit`). A package so its modules may share basenames with
tests/integration, where a source file's tests that need a server live."""
