"""Everything that is not unit: real llama.cpp servers, the CLI as a subprocess, sandboxed code,
loopback servers (the timed server, in-process aiohttp fakes). Tests marked `slow` run a real
llama.cpp server or a full sweep. A package so its modules may share basenames with tests/unit."""
