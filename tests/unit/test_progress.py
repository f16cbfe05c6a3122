"""Progress lines: requests, failures and known tokens, counted as records finish.
This half needs no server, process or socket; the rest is in tests/integration/test_progress.py."""
from __future__ import annotations

import io
import time

from benchrun.load.progress import Progress


def test_lines_count_requests_failures_and_known_tokens():
    out = io.StringIO()
    p = Progress("0_tiny_c1", 3, 1, 2, mode="lines", every_s=1e-9, stream=out)
    p.request_done(True, None)  # a reply decoded only after the run: no token count yet
    time.sleep(0.001)
    p.request_done(False, None)
    time.sleep(0.001)
    p.request_done(True, 40)
    p.close()
    lines = out.getvalue().splitlines()
    assert [ln.split(" requests")[0] for ln in lines] == ["[1/2] 0_tiny_c1 1/3", "[1/2] 0_tiny_c1 2/3",
                                                          "[1/2] 0_tiny_c1 3/3"]
    assert "0 failed" in lines[0] and "tok/s" not in lines[0]
    assert "1 failed" in lines[1] and "1 failed, " in lines[2] and " tok/s, " in lines[2]
