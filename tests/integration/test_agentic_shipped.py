"""The shipped agentic workloads' checks are passable: hand-written good replies pass every
declared check (in the real sandbox) and nonsense fails them."""
from __future__ import annotations

from benchrun.load.records import RequestRecord
from benchrun.workloads import make_workload

API = '''```python
from uuid import UUID, uuid4
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, EmailStr, Field

app = FastAPI()
users: dict[UUID, dict] = {}


class UserCreate(BaseModel):
    name: str = Field(min_length=1)
    email: EmailStr
    age: int = Field(ge=0, le=150)


@app.post("/users", status_code=201)
def create_user(user: UserCreate):
    uid = uuid4()
    users[uid] = {"id": str(uid), **user.model_dump()}
    return users[uid]


@app.get("/users/{user_id}")
def get_user(user_id: UUID):
    if user_id not in users:
        raise HTTPException(status_code=404, detail="user not found")
    return users[user_id]
```'''

DOC = '''```python
def binary_search(items, target):
    """Find the index of target in a sorted list.

    Args:
        items: A list sorted in ascending order.
        target: The value to find.

    Returns:
        The index of target, or -1 if it is not present.
    """
    lo, hi = 0, len(items) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if items[mid] == target:
            return mid
        if items[mid] < target:
            lo = mid + 1
        else:
            hi = mid - 1
    return -1
```'''

TESTS = '''```python
import pytest
from calculate_discount import calculate_discount


def test_ten_percent():
    assert calculate_discount(200, 10) == 180


def test_full_discount():
    assert calculate_discount(59.99, 100) == 0


def test_rejects_negative_price():
    with pytest.raises(ValueError):
        calculate_discount(-1, 10)
```'''

PLAN = '```json\n{"components": [{"name": "board", "purpose": "grid"}, {"name": "loop", "purpose": "input"}], "steps": ["board", "pieces", "loop"]}\n```'
GAME = '''```python
import sys

W, H = 6, 8


def main():
    x, y = 2, 0
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "q":
            break
        x = max(0, x - 1) if cmd == "a" else min(W - 1, x + 1) if cmd == "d" else x
        y = min(H - 1, y + 1) if cmd == "s" else y
        for row in range(H):
            print("".join("#" if (col, row) == (x, y) else "." for col in range(W)))


if __name__ == "__main__":
    main()
```'''
HELP = '```json\n{"title": "Tetris", "keys": {"a": "left", "d": "right", "s": "down", "w": "rotate", "q": "quit"}}\n```'
REVIEW = '```json\n{"verdict": "pass", "issues": []}\n```'


def records(replies: dict[str, list[str]]) -> list[RequestRecord]:
    out = []
    for agent, texts in replies.items():
        for k, text in enumerate(texts, start=1):
            out.append(RequestRecord(id=len(out), tags={"agent": agent, "turn": k}, status=200, done=True,
                                     start_ns=0, end_ns=1_000_000, event_ns=[500_000], event_kinds="c",
                                     text=text, usage={"completion_tokens": 1}))
    return out


def test_agentic_coding_checks_pass_on_good_replies_and_fail_on_nonsense(compose):
    w = make_workload(compose(["workload=agentic_coding"]).workload, 3)
    tasks = w.evaluate(records({"primary": [API, API, API], "S1": [DOC], "S2": [TESTS]}))
    assert [(t["agent"], t["passed"]) for t in tasks] == [("primary", True), ("S1", True), ("S2", True)], \
        [c for t in tasks for c in t["checks"] if not c["passed"]]
    names = {c["name"] for t in tasks for c in t["checks"]}
    assert names == {"python_parses", "defines", "regex", "has_docstrings", "pytest_passes"}
    junk = "q#v!Zk~p(=Ra<7"
    bad = w.evaluate(records({"primary": [junk] * 3, "S1": [junk], "S2": [junk]}))
    assert [t["passed"] for t in bad] == [False, False, False]


def test_tetris_pipeline_checks_pass_on_good_replies(compose):
    w = make_workload(compose(["workload=tetris_agents"]).workload, 2)
    tasks = w.evaluate(records({"planner": [PLAN], "developer": [GAME], "docs": [HELP], "qa": [REVIEW]}))
    assert [(t["agent"], t["role"], t["passed"]) for t in tasks] == [
        ("planner", "pipeline", True), ("developer", "pipeline", True), ("docs", "pipeline", True),
        ("qa", "pipeline", True)], [c for t in tasks for c in t["checks"] if not c["passed"]]
    # Ignores stdin and redraws forever: the output-size limit stops it.
    flood = GAME.replace("for line in sys.stdin:", "while True:\n        print('#' * 1_000_000)\n        line = 'x'")
    dev = w.evaluate(records({"planner": [PLAN], "developer": [flood], "docs": [HELP], "qa": [REVIEW]}))[1]
    assert dev["passed"] is False and "File too large" in dev["checks"][-1]["reason"]
