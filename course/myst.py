"""The chapters' MyST markdown as plain Jupyter markdown, for notebooks read outside the book.

Jupyter, Colab and reveal.js render CommonMark and ``$math$``, not MyST's roles and directives. The
course's notebooks and slides are generated from the executed chapters, so every glued number is
known: ``{glue:text}`name``` becomes the text the chapter glued, ``{{ run_time }}`` the value in the
notebook's metadata, a cross-reference its text, a citation its key, an admonition a bold title.
"""

from __future__ import annotations

import re

import nbformat

ROLE = re.compile(r"\{([\w:-]+)\}`([^`]*)`")
ADMONITION = re.compile(r"^:::+[ \t]*\{admonition\}[ \t]*([^\n]*)\n((?::\w+:[^\n]*\n)*)(.*?)^:::+[ \t]*$", flags=re.M | re.S)
BIBLIOGRAPHY = re.compile(r"^```+\s*\{bibliography\}.*?^```+\s*$\n?", flags=re.M | re.S)
TARGET = re.compile(r"^\([\w-]+\)=\s*$\n?", flags=re.M)
SUBSTITUTION = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def glue_values(nb: nbformat.NotebookNode) -> dict[str, str]:
    """{name: text} of every value the notebook glued (myst-nb's scrapbook outputs)."""
    found = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            meta = out.get("metadata", {}).get("scrapbook")
            if not meta:
                continue
            prefix = meta.get("mime_prefix", "")
            text = out.get("data", {}).get(prefix + "text/plain")
            if text is None:
                continue
            if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
                text = text[1:-1]                     # a glued string's repr, shown without its quotes
            found[meta["name"]] = text
    return found


def _role(name: str, body: str, glue: dict[str, str], where: str) -> str:
    text, _, target = body.partition(" <")
    target = target.rstrip(">") if target else ""
    if name in ("glue:text", "glue"):
        key = body.split(":", 1)[0]
        if key not in glue:
            raise KeyError(f"{where}: {{{name}}}`{body}` names no value the chapter glued")
        return glue[key]
    if name.startswith("py:"):
        if target:
            return f"`{text}`"
        return f"`{body.split('.')[-1]}`" if body.startswith("~") else f"`{body}`"
    if name == "cite":
        return "[" + ", ".join(k.strip() for k in body.split(",")) + "]"
    if name == "math":
        return f"${body}$"
    return text if target else body                       # term, doc, ref, numref, eq


def plain(source: str, glue: dict[str, str], substitutions: dict[str, str], where: str = "") -> str:
    """``source`` (MyST markdown) as plain Jupyter markdown; ``where`` names the cell in errors."""
    def admonition(m):
        title, body = m.group(1).strip(), m.group(3).rstrip()
        return f"**{title}.** {body}\n" if title else body + "\n"

    out = BIBLIOGRAPHY.sub("", source)
    out = TARGET.sub("", out)
    out = ADMONITION.sub(admonition, out)
    out = SUBSTITUTION.sub(lambda m: str(substitutions.get(m.group(1), m.group(0))), out)
    return ROLE.sub(lambda m: _role(m.group(1), m.group(2), glue, where), out)


def plain_notebook(nb: nbformat.NotebookNode, where: str = "") -> nbformat.NotebookNode:
    """A copy of ``nb`` whose markdown cells are plain markdown (code cells unchanged)."""
    nb = nbformat.from_dict(nb)
    glue = glue_values(nb)
    subs = nb.metadata.get("myst", {}).get("substitutions", {})
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            cell.source = plain(cell.source, glue, subs, f"{where} cell {i}")
    return nb
