"""Case tables and region matrices as HTML and CSV, for Allure attachments."""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Sequence


def to_csv(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def to_html(
    title: str, header: Sequence[str], rows: Sequence[Sequence[object]], bad: Sequence[bool] = ()
) -> str:
    """A plain table; rows flagged in `bad` are shown red."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        style = ' style="background:#fdd"' if i < len(bad) and bad[i] else ""
        cells = "".join(f"<td>{html.escape(str(c))}</td>" for c in row)
        body.append(f"<tr{style}>{cells}</tr>")
    return (
        "<html><head><meta charset='utf-8'><style>table{border-collapse:collapse;"
        "font-family:monospace}td,th{border:1px solid #999;padding:2px 6px}</style></head>"
        f"<body><h3>{html.escape(title)}</h3><table><tr>{head}</tr>{''.join(body)}</table>"
        "</body></html>"
    )
