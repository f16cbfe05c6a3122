"""Checks that read the reply without running it."""
from __future__ import annotations

import ast
import re

from benchrun.checks.extract import extract_code, extract_json

Outcome = tuple[bool, str]


def parse(text: str) -> tuple[ast.Module | None, str]:
    code = extract_code(text)
    if not code.strip():
        return None, "no code in the reply"
    try:
        return ast.parse(code), ""
    except SyntaxError as e:
        return None, f"SyntaxError line {e.lineno}: {e.msg}"


def python_parses(text: str, spec: dict, ctx) -> Outcome:
    tree, err = parse(text)
    return (True, f"parses ({len(tree.body)} top-level statements)") if tree else (False, err)


def _returns_value(fn: ast.AST) -> bool:
    """A `return X` in fn itself (not in a nested function)."""
    stack = list(ast.iter_child_nodes(fn))
    while stack:
        n = stack.pop()
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(n, ast.Return) and n.value is not None:
            return True
        stack.extend(ast.iter_child_nodes(n))
    return False


def has_docstrings(text: str, spec: dict, ctx) -> Outcome:
    """Every function and class has a docstring; a function's docstring has the Google-style
    sections it needs: `Args:` when it takes parameters, `Returns:` when it returns a value
    (or exactly the `sections` listed in the spec)."""
    tree, err = parse(text)
    if tree is None:
        return False, err
    defs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    if not defs:
        return False, "no function or class defined"
    for d in defs:
        doc = ast.get_docstring(d)
        if not doc:
            return False, f"{d.name} has no docstring"
        if isinstance(d, ast.ClassDef):
            continue
        if spec.get("sections") is not None:
            need = list(spec["sections"])
        else:
            params = [a.arg for a in d.args.posonlyargs + d.args.args + d.args.kwonlyargs
                      if a.arg not in ("self", "cls")]
            need = (["Args"] if params or d.args.vararg or d.args.kwarg else []) + \
                   (["Returns"] if _returns_value(d) else [])
        missing = [s for s in need if not re.search(rf"^\s*{s}:\s*$", doc, re.M)]
        if missing:
            return False, f"{d.name} docstring lacks Google-style section(s) {', '.join(m + ':' for m in missing)}"
    return True, f"{len(defs)} definition(s) documented"


def top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for n in tree.body:
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(n.name)
        elif isinstance(n, (ast.Assign, ast.AnnAssign)):
            for t in (n.targets if isinstance(n, ast.Assign) else [n.target]):
                names.update(x.id for x in ast.walk(t) if isinstance(x, ast.Name))
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in n.names)
    return names


def defines(text: str, spec: dict, ctx) -> Outcome:
    want = list(spec.get("names") or [])
    if not want:
        raise ValueError("check `defines` needs `names: [...]`")
    tree, err = parse(text)
    if tree is None:
        return False, err
    missing = [n for n in want if n not in top_level_names(tree)]
    return (False, f"missing {', '.join(missing)}") if missing else (True, f"defines {', '.join(want)}")


_FLAGS = {"i": re.I, "m": re.M, "s": re.S}


def regex(text: str, spec: dict, ctx) -> Outcome:
    """`pattern` must be found in the reply (or must not, with `absent: true`)."""
    if not spec.get("pattern"):
        raise ValueError("check `regex` needs `pattern`")
    flags = 0
    for f in spec.get("flags", ""):
        flags |= _FLAGS[f]
    found = re.search(spec["pattern"], text, flags) is not None
    if spec.get("absent"):
        return (not found, "pattern absent" if not found else f"forbidden pattern found: {spec['pattern']}")
    return (found, "pattern found" if found else f"pattern not found: {spec['pattern']}")


def json_schema(text: str, spec: dict, ctx) -> Outcome:
    import jsonschema

    schema = spec.get("schema")
    if schema is None:
        raise ValueError("check `json_schema` needs `schema: {...}`")
    try:
        value = extract_json(text)
    except ValueError as e:
        return False, str(e)
    err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(value))
    if err is not None:
        where = "/".join(str(p) for p in err.absolute_path) or "(root)"
        return False, f"invalid at {where}: {err.message}"
    return True, "valid against the schema"
