"""`python -m benchrun ...` == `benchrun ...` (imports benchrun.cli once, as a module)."""
import sys

from benchrun.cli import main

sys.exit(main())
