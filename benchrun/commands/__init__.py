"""Subcommands other than running a benchmark (each module has main(argv) -> exit code)."""
