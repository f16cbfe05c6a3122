"""A report as a list of plain blocks, rendered to Markdown or to one self-contained HTML page
(images inlined), so both always carry the same content."""
from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Union


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Para:
    text: str


@dataclass
class Item:
    """A bullet with a lead in strong type (a finding): kept apart from the text, so each writer
    renders the emphasis itself instead of one parsing `**` back out of the other's output."""
    lead: str
    text: str = ""

    def __post_init__(self):
        self.text = self.text.lstrip()

    def sep(self) -> str:  # "**lead**: text", "**lead** text"
        return "" if not self.text or self.text[0] in ":;,." else " "


@dataclass
class Bullets:
    items: list[Union[str, Item]]


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    align: str = ""  # one letter per column, l or r; default: first left, rest right


@dataclass
class Code:
    text: str
    lang: str = "bash"


@dataclass
class Image:
    path: str  # relative to the report
    alt: str


Block = Union[Heading, Para, Bullets, Table, Code, Image]


def _md_cell(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out += ["#" * b.level + " " + b.text, ""]
        elif isinstance(b, Para):
            out += [b.text, ""]
        elif isinstance(b, Bullets):
            out += [f"- **{i.lead}**{i.sep()}{i.text}" if isinstance(i, Item) else f"- {i}" for i in b.items] + [""]
        elif isinstance(b, Table):
            align = b.align or "l" + "r" * (len(b.headers) - 1)
            out.append("| " + " | ".join(_md_cell(h) for h in b.headers) + " |")
            out.append("|" + "|".join("---:" if a == "r" else "---" for a in align) + "|")
            out += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in b.rows]
            out.append("")
        elif isinstance(b, Code):
            # A fence longer than any backtick run inside, so generated text cannot close it early.
            fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", b.text)), default=0))
            out += [f"{fence}{b.lang}", b.text.rstrip("\n"), fence, ""]
        elif isinstance(b, Image):
            out += [f"![{b.alt}]({b.path})", ""]
    return "\n".join(out).rstrip() + "\n"


_BOLD = re.compile(r"\*\*(.+?)\*\*")
_CODE = re.compile(r"`([^`]+)`")


def _inline(s: str) -> str:
    s = html.escape(str(s), quote=False)
    s = _CODE.sub(r"<code>\1</code>", s)
    return _BOLD.sub(r"<strong>\1</strong>", s)


def _item_html(i: Union[str, Item]) -> str:
    if isinstance(i, Item):
        return f"<strong>{html.escape(i.lead, quote=False)}</strong>{i.sep()}{_inline(i.text)}"
    return _inline(i)


_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}table{border-collapse:collapse;margin:.6em 0 1.2em}
th,td{border:1px solid #ccc;padding:.3em .6em}th{background:#f3f3f3}td.r{text-align:right}
code,pre{background:#f6f6f6;font-family:ui-monospace,monospace}pre{padding:.7em;overflow-x:auto}
img{max-width:100%;border:1px solid #eee;margin:.4em 0}h1,h2,h3{margin-top:1.4em}"""


def to_html(blocks: list[Block], base_dir: Path, title: str) -> str:
    """One page, no external files: images are inlined as data: URIs."""
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
           f"<style>{_CSS}</style></head><body>"]
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"<h{b.level}>{_inline(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            out.append(f"<p>{_inline(b.text)}</p>")
        elif isinstance(b, Bullets):
            out.append("<ul>" + "".join(f"<li>{_item_html(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Table):
            align = b.align or "l" + "r" * (len(b.headers) - 1)
            rows = "".join("<tr>" + "".join(f"<td class='{a}'>{_inline(c)}</td>" for c, a in zip(r, align))
                           + "</tr>" for r in b.rows)
            out.append("<table><tr>" + "".join(f"<th>{_inline(h)}</th>" for h in b.headers) + "</tr>"
                       + rows + "</table>")
        elif isinstance(b, Code):
            out.append(f"<pre><code>{html.escape(b.text)}</code></pre>")
        elif isinstance(b, Image):
            p = base_dir / b.path
            if p.is_file():
                data = base64.b64encode(p.read_bytes()).decode()
                out.append(f"<img alt='{html.escape(b.alt)}' src='data:image/png;base64,{data}'>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
