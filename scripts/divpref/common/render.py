"""One renderer for the report tables: cells laid out in a grid, then written as markdown, HTML or LaTeX.

The tables are built as :class:`Section` objects of already formatted cells (:func:`format_number`), so each
table module decides what its cells say and this module alone how they are written. A missing value prints
:data:`EN_DASH` in Table 2, its LaTeX and the HTML pages, and :data:`HYPHEN` in the detection and judge
tables, as those files always have.
"""

import math
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from html import escape

import polars as pl

from divpref.common.constants import POOLED_SEED

EN_DASH = "\N{EN DASH}"
"""A missing cell in Table 2 (markdown, HTML; ``--`` in LaTeX) and in the HTML pages of data frames."""
HYPHEN = "-"
"""A missing cell in the detection and judge tables (markdown)."""
TABLE_STYLE = (
    "body{font-family:sans-serif;font-size:14px}table{border-collapse:collapse;margin-bottom:1em}"
    "th,td{border:1px solid #bbb;padding:4px 8px;text-align:right;white-space:nowrap}"
    "td:first-child,th:first-child{text-align:left}"
)
"""Inline style of the HTML pages that show tables."""
LATEX_REPLACEMENTS = {
    "#": r"\#",
    "%": r"\%",
    "_": r"\_",
    "&": r"\&",
    EN_DASH: "--",
    ">": "$>$",
    "<": "$<$",
    "|": "$|$",
}


@dataclass(frozen=True)
class Section:
    """A rendered table: an optional title and note above a header row and body rows of formatted cells."""

    title: str | None
    note: str | None
    header: Sequence[str]
    body: Sequence[Sequence[str]]


# ---------------------------------------------------------------------------------------------------------
# Cells


def format_number(
    value: float | None,
    *,
    decimals: int = 3,
    missing: str = EN_DASH,
    leading_zero: bool = True,
    percent: bool = False,
) -> str:
    """``value`` with ``decimals`` decimals (``percent``: times 100, with ``%``); ``missing`` for None or NaN.

    ``leading_zero=False`` writes ``.663`` and ``-.2`` as the paper does.
    """
    if value is None or math.isnan(value):
        return missing
    text = f"{100 * value:.{decimals}f}%" if percent else f"{value:.{decimals}f}"
    if not leading_zero:
        text = text[1:] if text.startswith("0.") else text.replace("-0.", "-.")
    return text


def format_interval(value: float | None, low: float | None, high: float | None, **number_format) -> str:
    """``value [low, high]``, each through :func:`format_number` with ``number_format``."""
    low_text, high_text = (format_number(bound, **number_format) for bound in (low, high))
    return f"{format_number(value, **number_format)} [{low_text}, {high_text}]"


def frame_cell(value: object) -> str:
    """A data-frame value as a cell: floats with 1 decimal, None as :data:`EN_DASH`, others as ``str``."""
    if value is None:
        return EN_DASH
    return f"{value:.1f}" if isinstance(value, float) else str(value)


# ---------------------------------------------------------------------------------------------------------
# Layout


def pooled_or_only_seed(table: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """Rows of ``table`` with one seed per ``keys``: the pooled seed where there is one, else the only seed.

    Table order is kept.
    """
    is_pooled = pl.col("seed") == POOLED_SEED
    return table.filter(is_pooled | ~is_pooled.any().over(keys))


def layout_grid(
    corner: str,
    rows: Iterable[Hashable],
    columns: Sequence[Hashable],
    *,
    row_label: Callable[[Hashable], str],
    column_label: Callable[[Hashable], str],
    cell: Callable[[Hashable, Hashable], str],
) -> tuple[list[str], list[list[str]]]:
    """Header and body of a grid: ``corner`` and the column labels, then per row its label and cells."""
    header = [corner, *(column_label(column) for column in columns)]
    body = [[row_label(row), *(cell(row, column) for column in columns)] for row in rows]
    return header, body


# ---------------------------------------------------------------------------------------------------------
# Markdown


def markdown_table(header: Sequence[str], body: Iterable[Sequence[str]]) -> list[str]:
    """Lines of a markdown table (cells as given, not escaped)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cells) + " |" for cells in body]


def markdown_lines(sections: Iterable[Section]) -> list[str]:
    """Each section as ``### title``, its note and its table, each followed by a blank line."""
    lines: list[str] = []
    for section in sections:
        if section.title is not None:
            lines += [f"### {section.title}", ""]
        if section.note is not None:
            lines += [section.note, ""]
        lines += [*markdown_table(section.header, section.body), ""]
    return lines


def render_markdown(sections: Iterable[Section]) -> str:
    return "\n".join(markdown_lines(sections))


# ---------------------------------------------------------------------------------------------------------
# HTML


def html_page(body: str, *, style: str = TABLE_STYLE) -> str:
    """A self-contained HTML page (inline style, no external resources) around ``body``."""
    head = f"<head><meta charset='utf-8'><style>{style}</style></head>"
    return f"<!DOCTYPE html><html>{head}<body>{body}</body></html>\n"


def html_table(header: Sequence[str], body: Iterable[Sequence[str]]) -> str:
    """An HTML table of already formatted cells (escaped here)."""
    head = "".join(f"<th>{escape(cell)}</th>" for cell in header)
    rows = "".join("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in cells) + "</tr>" for cells in body)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def html_section(section: Section) -> str:
    title = "" if section.title is None else f"<h3>{escape(section.title)}</h3>"
    note = "" if section.note is None else f"<p>{escape(section.note)}</p>"
    return title + note + html_table(section.header, section.body)


def render_html(sections: Iterable[Section]) -> str:
    """The sections as one self-contained HTML page (for the Snakemake report)."""
    return html_page("".join(html_section(section) for section in sections))


def frame_to_html(frame: pl.DataFrame, *, title: str, note: str = "") -> str:
    """A self-contained HTML page showing ``frame`` as a table (cells by :func:`frame_cell`)."""
    body = [[frame_cell(value) for value in row] for row in frame.iter_rows()]
    return render_html([Section(title, note, frame.columns, body)])


# ---------------------------------------------------------------------------------------------------------
# LaTeX


def latex_escape(text: str) -> str:
    return "".join(LATEX_REPLACEMENTS.get(char, char) for char in text)


def render_latex(header: Sequence[str], body: Iterable[Sequence[str]], *, caption: str, label: str) -> str:
    """A booktabs table (first column left, the others right aligned); cells and caption escaped here."""
    return "\n".join(
        [
            r"\begin{table}[t]",
            r"\centering",
            r"\small",
            r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}",
            r"\toprule",
            " & ".join(latex_escape(cell) for cell in header) + r" \\",
            r"\midrule",
            *(" & ".join(latex_escape(cell) for cell in cells) + r" \\" for cells in body),
            r"\bottomrule",
            r"\end{tabular}",
            r"\caption{" + latex_escape(caption) + "}",
            rf"\label{{{label}}}",
            r"\end{table}",
            "",
        ]
    )
