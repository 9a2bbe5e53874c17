"""One self-contained `report.html` for a `nucel-interpret` run: every picture embedded (base64 PNG) and every
table inline, so it opens in a browser from a file, with no server and nothing beside it."""

import base64
import html
import os

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;border-bottom:1px solid #ccc;margin-top:2em}h3{font-size:1em}
img{max-width:100%;border:1px solid #eee;margin:.4em 0}table{border-collapse:collapse;font-size:.8em}
td,th{border:1px solid #ddd;padding:2px 6px;text-align:left}th{background:#f4f4f4}.note{color:#555}"""


def image(path, caption):
    with open(path, "rb") as handle:
        data = base64.b64encode(handle.read()).decode()
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption class=note>{html.escape(caption)}</figcaption></figure>")


def table(columns, rows, limit=50):
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows[:limit])
    more = f"<p class=note>{len(rows) - limit} more rows in the TSV file.</p>" if len(rows) > limit else ""
    return f"<table><tr>{head}</tr>{body}</table>{more}"


def write_report(path, title, summary_lines, sections):
    """`sections`: (heading, [("image", path, caption) | ("table", columns, rows) | ("text", str)])."""
    parts = [f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title>"
             f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    parts += [f"<p class=note>{html.escape(line)}</p>" for line in summary_lines]
    for heading, items in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        for item in items:
            if item[0] == "image":
                parts.append(image(item[1], item[2]))
            elif item[0] == "table":
                parts.append(table(item[1], item[2]))
            else:
                parts.append(f"<p>{html.escape(item[1])}</p>")
    parts.append("</body></html>")
    staging = f"{path}.tmp-{os.getpid()}"
    with open(staging, "w", encoding="utf-8") as handle:
        handle.write("\n".join(parts))
    os.replace(staging, path)
    return path
