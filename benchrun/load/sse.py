"""A small, total Server-Sent Events decoder over timestamped byte chunks.

The hot loop only stamps and stores raw chunks; this runs after the stream ends. An event's
time is the arrival time of the chunk that completed it (its terminating blank line).
iter_event_bytes yields each event's data as raw bytes (what decode.parse_stream reads);
clean_events gives the same for the usual stream in whole-stream C calls; iter_events
gives it decoded to text (invalid UTF-8 replaced)."""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import chain, repeat


def _data_value(line: bytes) -> bytes | None:
    field, sep, value = line.partition(b":")
    if field != b"data" or not sep:
        return None  # comments (":..."), other fields, junk lines
    return value[1:] if value.startswith(b" ") else value


def iter_events(chunks: Iterable[tuple[int, bytes]]) -> Iterator[tuple[int, str]]:
    """iter_event_bytes, each event's data decoded as UTF-8 (invalid bytes replaced)."""
    for ns, data in iter_event_bytes(chunks):
        yield ns, data.decode("utf-8", "replace")


def clean_events(chunks: Sequence[tuple[int, bytes]]) -> tuple[list[int], list[bytes]] | None:
    """The usual stream, fast: (ns per event, data per event) when every chunk is whole
    `data: ...\\n\\n` events and nothing else (no other fields, comments, multi-line data or
    \\r); else None, and iter_event_bytes (which reads anything) gives the same answer.
    Whole-stream C calls (map over bytes methods, one join and split): no Python-level work per
    chunk or event, since this runs for every request and its CPU is part of each token's cost."""
    if not chunks:
        return [], []
    stamps, parts = zip(*chunks)
    if not (all(map(bytes.startswith, parts, repeat(b"data: ")))
            and all(map(bytes.endswith, parts, repeat(b"\n\n")))):
        return None
    joined = b"".join(parts)
    datas = joined[6:-2].split(b"\n\ndata: ")
    # Each chunk starts an event and ends one, so a chunk holding k blank-line ends holds k
    # events; the newline count rules out any line that is not one event's data line.
    if b"\r" in joined or joined.count(b"\n") != 2 * len(datas):
        return None
    if len(datas) == len(parts):  # one event per chunk, the usual case
        return list(stamps), datas
    counts = map(bytes.count, parts, repeat(b"\n\n"))
    return list(chain.from_iterable(map(repeat, stamps, counts))), datas


def iter_event_bytes(chunks: Iterable[tuple[int, bytes]]) -> Iterator[tuple[int, bytes]]:
    """Yield (ns, data) for each event. Line breaks are \\r\\n, \\n or \\r; multi-line data
    is joined with \\n. A stream cut without a final blank line still yields its last event."""
    buf = b""
    data: list[bytes] = []
    ns = 0
    skip_lf = False  # the last chunk ended in \r: a \n starting the next one belongs to it
    for ns, chunk in chunks:
        if skip_lf and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        skip_lf = chunk.endswith(b"\r")
        if not buf and not data and chunk.endswith(b"\n\n") and b"\r" not in chunk:
            # Fast path, the usual case: whole \n-terminated events in one chunk.
            for part in chunk.split(b"\n\n")[:-1]:
                if b"\n" not in part:
                    if (value := _data_value(part)) is not None:
                        yield ns, value
                    continue
                lines = [v for line in part.split(b"\n") if line and (v := _data_value(line)) is not None]
                if lines:
                    yield ns, b"\n".join(lines)
            continue
        buf += chunk
        while True:
            i_n, i_r = buf.find(b"\n"), buf.find(b"\r")
            if i_r >= 0 and (i_n < 0 or i_r < i_n):
                # A \r ends a line at once (no waiting for a possible \n: the event's time
                # is when its blank line arrived); \r\n counts as one break.
                end, nxt = i_r, i_r + (2 if i_r + 1 < len(buf) and buf[i_r + 1] == 10 else 1)
            elif i_n >= 0:
                end, nxt = i_n, i_n + 1
            else:
                break
            line, buf = buf[:end], buf[nxt:]
            if not line:
                if data:
                    yield ns, b"\n".join(data)
                    data = []
            elif (value := _data_value(line)) is not None:
                data.append(value)
    if buf.strip():
        value = _data_value(buf.rstrip(b"\r"))
        if value is not None:
            data.append(value)
    if data:
        yield ns, b"\n".join(data)
