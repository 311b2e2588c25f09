"""``report.md`` and ``report.html`` of a reproduction folder, rendered from its files with no
model (a Jinja2 template and its stylesheet, under ``report/templates/``)::

    taskvec report docs/reproduce-embedded-vlm [--plots]
"""

from __future__ import annotations

import math
import re
from importlib import resources
from pathlib import Path

import pandas as pd

from taskvec.report.reproduce.document import document
from taskvec.report.reproduce.folder import ReproductionFolder
from taskvec.report.reproduce.layout import Figure, Section, Table
from taskvec.report.reproduce.plots import draw_plots
from taskvec.storage.markdown import markdown_table
from taskvec.storage.run_folder import write_atomic


def to_markdown(title: str, notices: list[str], sections: list[Section]) -> str:
    lines = [f"# {title}", ""]
    for notice in notices:
        lines += [f"> {notice}", ""]
    for section in sections:
        lines += [f"{'#' * section.level} {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Table):
                if block.caption:
                    lines += [f"**{block.caption}**", ""]
                lines += [markdown_table(block.frame, index=block.index), ""]
            elif isinstance(block, Figure):
                lines += [f"![{block.caption}]({block.path})", ""]
            else:
                lines += [block, ""]
    return "\n".join(lines)


def _inline_html(text: str) -> str:
    """One line of the report's Markdown (titles, captions) as HTML: `code`, **strong**, *em*;
    never a list or a paragraph, whatever the line starts with ("1. Cross-modal ...")."""
    from markupsafe import escape

    html = str(escape(text))
    html = re.sub(r"`([^`]+)`", r"<code>\1</code>", html)
    html = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", html)
    return re.sub(r"\*([^*]+)\*", r"<em>\1</em>", html)


_NUMBER = re.compile(r"-?\d+(\.\d+)?(e-?\d+)?( ± \d+(\.\d+)?)?( [†‡])?")  # † collapsed, ‡ not judged


def _cell_text(value) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:g}"
    return str(value)


def _table_html(table: Table, escape) -> str:
    """A table as HTML: index levels as leading header columns, columns of numbers right-aligned,
    the paper's rows (a ``source`` naming the paper) marked ``class="paper"``."""
    frame = table.frame
    if isinstance(frame.columns, pd.MultiIndex):
        frame = frame.set_axis([" / ".join(map(str, label)) for label in frame.columns], axis=1)
    levels = list(frame.index.names) if table.index else []
    keys = [k if isinstance(k, tuple) else (k,) for k in frame.index] if table.index else [()] * len(frame)
    columns = {name: [_cell_text(v) for v in frame[name]] for name in frame.columns}
    numeric = {name: all(not t or _NUMBER.fullmatch(t) for t in texts) for name, texts in columns.items()}
    head = "".join(f"<th>{escape('' if n is None else str(n))}</th>" for n in levels)
    head += "".join(f"<th{' class=num' if numeric[c] else ''}>{escape(str(c))}</th>" for c in frame.columns)
    source = [str(k[levels.index("source")]) for k in keys] if "source" in levels else None
    if source is None and "source" in columns:
        source = columns["source"]
    body = []
    for row, key in enumerate(keys):
        marker = ' class="paper"' if source is not None and source[row].startswith("paper") else ""
        parts = [f'<th scope="row">{escape(str(k))}</th>' for k in key]
        for name, texts in columns.items():
            cell = escape(texts[row])
            parts.append(f'<td class="num">{cell}</td>' if numeric[name] else f"<td>{cell}</td>")
        body.append(f"<tr{marker}>" + "".join(parts) + "</tr>")
    return (
        "<table>\n<thead><tr>" + head + "</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>"
    )


def to_html(title: str, notices: list[str], sections: list[Section]) -> str:
    from jinja2 import Environment, PackageLoader, select_autoescape
    from markupsafe import Markup, escape

    environment = Environment(
        loader=PackageLoader("taskvec.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    rendered = []
    for section in sections:
        blocks = []
        for block in section.blocks:
            if isinstance(block, Table):
                blocks.append(
                    {
                        "kind": "table",
                        "caption": Markup(_inline_html(block.caption)),
                        "html": Markup(_table_html(block, escape)),
                    }
                )
            elif isinstance(block, Figure):
                blocks.append({"kind": "figure", "path": block.path, "caption": block.caption})
            else:
                blocks.append(
                    {
                        "kind": "text",
                        "html": Markup(_block_html(block)),
                    }
                )
        rendered.append(
            {
                "title": Markup(_inline_html(section.title)),
                "level": section.level,
                "anchor": section.anchor,
                "blocks": blocks,
            }
        )
    contents = []
    for section in rendered:
        if section["level"] == 2 or not contents:
            contents.append({**section, "children": []})
        else:
            contents[-1]["children"].append(section)
    stylesheet = resources.files("taskvec.report").joinpath("templates", "report.css").read_text()
    return environment.get_template("report.html.j2").render(
        title=Markup(_inline_html(title)),
        title_text=re.sub(r"[*`]", "", title),
        notices=[Markup(_inline_html(n)) for n in notices],
        sections=rendered,
        contents=contents,
        stylesheet=Markup(stylesheet),
    )


def _block_html(text: str) -> str:
    """A block of the report's Markdown as HTML, any HTML in it shown as text: the report quotes
    model paths, task names and answers, and a folder named ``<img onerror=...>`` ran its script."""
    import markdown

    converter = markdown.Markdown()
    converter.preprocessors.deregister("html_block")
    converter.inlinePatterns.deregister("html")
    # a quoted path written as a Markdown link (``[w](javascript:...)``) became a live one
    return _UNSAFE_URL.sub(r'\1="#"', converter.convert(text))


#: a link or image whose address runs code when followed
_UNSAFE_URL = re.compile(r'\b(href|src)="\s*(?:javascript|vbscript|data):[^"]*"', re.IGNORECASE)


def render_report(folder: str | Path, plots: bool = False) -> Path:
    """Write ``report.md`` and ``report.html`` of the reproduction in ``folder`` from its files
    (``config.json``, ``report_context.json``, ``tables/``, ``analysis/tables/``, the plots), with
    no model; with ``plots``, draw the figures again from the tables first. Returns the path of
    ``report.md``. Equal files give equal reports, byte for byte."""
    root = Path(folder)
    source = ReproductionFolder(root)
    if plots:
        from taskvec.report import plots as analysis_plots

        draw_plots(root, list(source.config["reproduce"]["styles"]))
        if (root / "analysis" / "tables").is_dir():
            analysis_plots.redraw(root / "analysis", source.config["model"]["name"])
    title, notices, sections = document(source)
    write_atomic(root / "report.md", to_markdown(title, notices, sections))
    write_atomic(root / "report.html", to_html(title, notices, sections))
    return root / "report.md"
