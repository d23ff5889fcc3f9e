"""Reports for `mio bench iis` / `mio bench perf`: Markdown, and self-contained HTML with an inline
SVG bar chart (no scripts, no CDN)."""

from __future__ import annotations

import html
import json
from pathlib import Path

from mio.metrics.iis import DIMENSION_NAMES, DIMENSIONS

COLORS = {"paper": "#3b6ea8", "prev": "#9aa5b1", "ours": "#d9822b"}


def _fmt(v: object, nd: int = 2) -> str:
    if v is None:
        return "n/m"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def bar_chart_svg(groups: list[str], series: list[tuple[str, str, list[float | None]]],
                  width: int = 720, height: int = 300, vmax: float = 100.0) -> str:
    """A grouped bar chart: `series` = (label, colour, one value per group or None = not measured)."""
    left, bottom, top = 40, 40, 30
    plot_h = height - bottom - top
    gw = (width - left - 10) / len(groups)
    bw = gw * 0.8 / len(series)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">']
    for tick in range(0, int(vmax) + 1, 20):
        y = top + plot_h * (1 - tick / vmax)
        out.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e3e3"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>')
    for gi, g in enumerate(groups):
        x0 = left + gi * gw + gw * 0.1
        for si, (_, colour, values) in enumerate(series):
            v = values[gi]
            x = x0 + si * bw
            if v is None:
                out.append(f'<text x="{x + bw / 2:.1f}" y="{top + plot_h - 4:.1f}" text-anchor="middle" '
                           f'fill="#888" font-size="9">n/m</text>')
                continue
            h = plot_h * max(0.0, min(v, vmax)) / vmax
            out.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bw - 2:.1f}" height="{h:.1f}" '
                       f'fill="{colour}"/><text x="{x + bw / 2:.1f}" y="{top + plot_h - h - 3:.1f}" '
                       f'text-anchor="middle" font-size="9">{v:.1f}</text>')
        out.append(f'<text x="{left + gi * gw + gw / 2:.1f}" y="{height - bottom + 16}" '
                   f'text-anchor="middle">{html.escape(g)}</text>')
    for si, (label, colour, _) in enumerate(series):
        x = left + si * 200
        out.append(f'<rect x="{x}" y="6" width="12" height="12" fill="{colour}"/>'
                   f'<text x="{x + 16}" y="16">{html.escape(label)}</text>')
    out.append("</svg>")
    return "".join(out)


def iis_markdown(r: dict) -> str:
    p = r["paper"]["76.0"]
    ours = r["ours"]["scores"]
    lines = ["# Interactive Intelligence Score (§7.7) — Mio as configured here", "",
             f"Mode: {'quick' if r['quick'] else 'full'}. Paper figures: Tables 1-8 under the reading that "
             f"reproduces §7.7.2's 76.0 (see below). 'n/m' = not measured.", "",
             "| dimension | paper Mio | paper previous best | ours | status |", "|---|---|---|---|---|"]
    for k in DIMENSIONS:
        prev = p["previous_best"][k]
        prev_s = _fmt(prev) + (" (implied)" if k == "cog" else "")
        lines.append(f"| {DIMENSION_NAMES[k]} | {_fmt(p['mio'][k])} | {prev_s} | {_fmt(ours[k])} | "
                     f"{r['dimensions'][k]['status']} |")
    lines.append(f"| **IIS** | **{_fmt(p['mio_iis'])}** | {_fmt(p['previous_best_iis'])} | "
                 f"{_fmt(r['ours']['iis'])} | {r['ours']['iis_reason'] or ''} |")
    lines += ["", "## What each of our figures is, and why it is (not) comparable", ""]
    for k in DIMENSIONS:
        d = r["dimensions"][k]
        lines.append(f"### {DIMENSION_NAMES[k]} — {d['status']}")
        if d.get("reason"):
            lines.append(f"- Not measured: {d['reason']}.")
        for name, v in (d.get("inputs") or {}).items():
            lines.append(f"- {name}: {_fmt(v, 4)}")
        for name, v in (d.get("terms") or {}).items():
            paper = (d.get("paper_en_terms") or {}).get(name)
            beside = f" (paper, Kodama-TTS English: {_fmt(paper)})" if paper is not None else ""
            lines.append(f"- term `{name}` on the 0-100 scale of the formula: {_fmt(v)}{beside}")
        for key in ("units", "pj_over_steady_jerk", "paper", "talker_rtf"):
            if d.get(key) is not None:
                v = d[key]
                lines.append(f"- {key}: {json.dumps(v) if isinstance(v, dict) else _fmt(v, 4)}")
        for name, why in (d.get("missing") or {}).items():
            lines.append(f"- {name} not measured: {why}")
        for key in ("source", "comparability"):
            if d.get(key):
                lines.append(f"- {key}: {d[key]}")
        lines.append("")
    lines += ["## The paper's two totals", ""]
    for reading, pr in r["paper"].items():
        lines.append(f"- **{reading}**: {json.dumps(pr['reading'])} -> Mio {pr['mio_iis']:.3f}; "
                     + ", ".join(f"S_{k} {pr['mio'][k]:.2f}" for k in DIMENSIONS)
                     + f"; previous best {pr['previous_best_iis']:.2f} with S_cog implied "
                       f"{pr['previous_best']['cog']:.2f}")
    lines += ["", "Both readings: S_cog from Table 8 Full Thinker (CB 4.221) and §7.6 (TT 0.908, RT 0.735); "
              "S_fac from Table 3 UniLS with *listening* FDD/PDD/JDD; S_som from Table 5 FloodDiffusion; "
              "S_vis from Table 6 (multi-view). GPT-4o's TT/RT are only in Figure 17, so the "
              "previous-best S_cog is derived from the stated gap (+8.4 / +7.8). Note that S_cog as "
              "written tops out at 66.7, not 100.", ""]
    return "\n".join(lines)


def iis_html(r: dict) -> str:
    p = r["paper"]["76.0"]
    groups = [DIMENSION_NAMES[k].split(" (")[0] for k in DIMENSIONS] + ["IIS"]
    chart = bar_chart_svg(groups, [
        ("paper: Mio", COLORS["paper"], [p["mio"][k] for k in DIMENSIONS] + [p["mio_iis"]]),
        ("paper: previous best", COLORS["prev"], [p["previous_best"][k] for k in DIMENSIONS] + [p["previous_best_iis"]]),
        ("ours (this machine)", COLORS["ours"], [r["ours"]["scores"][k] for k in DIMENSIONS] + [r["ours"]["iis"]]),
    ])
    md = iis_markdown(r)
    body = "\n".join(f"<p>{html.escape(line)}</p>" if line and not line.startswith("|") else "" for line in md.splitlines()[4:])
    table = _md_table_to_html([line for line in md.splitlines() if line.startswith("|")])
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Mio IIS</title>"
            f"<style>body{{font-family:sans-serif;max-width:860px;margin:2em auto}}"
            f"td,th{{border:1px solid #ccc;padding:4px 8px}}table{{border-collapse:collapse}}</style></head>"
            f"<body><h1>Interactive Intelligence Score</h1>{chart}{table}{body}</body></html>")


def _md_table_to_html(rows: list[str]) -> str:
    out = ["<table>"]
    for i, row in enumerate(r for r in rows if not r.startswith("|---")):
        cells = [c.strip().strip("*") for c in row.strip("|").split("|")]
        tag = "th" if i == 0 else "td"
        out.append("<tr>" + "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in cells) + "</tr>")
    out.append("</table>")
    return "".join(out)


def perf_markdown(r: dict) -> str:
    lines = ["# Mio performance budgets (docs/architecture.md §7)", "",
             f"Machine: {r['machine']['cpus']} CPUs, load {r['machine']['loadavg_1min']}; "
             f"{'quick' if r['quick'] else 'full'} run, {r['wall_s']} s.", "",
             "| budget | measured median | budget | ok | source |", "|---|---|---|---|---|"]
    for row in r["budgets"]:
        ok = {True: "yes", False: "NO", None: "-"}[row["within_budget"]]
        val = _fmt(row["measured_median"], 4)
        lines.append(f"| {row['what']} | {val} {row['unit'] if row['measured_median'] is not None else ''} | "
                     f"{row['compare']} {row['budget']} {row['unit']} | {ok} | {row['source']}"
                     f"{'; ' + row['note'] if row.get('note') else ''} |")
    return "\n".join(lines) + "\n"


def write(result: dict, json_path: str | Path) -> list[Path]:
    """Write the JSON and its Markdown (and, for the IIS, HTML) report beside it."""
    from mio.core.atomic import write_text

    out = write_text(json_path, json.dumps(result, indent=2, default=float))
    paths = [out]
    if result["suite"] == "iis":
        paths += [write_text(out.with_suffix(".md"), iis_markdown(result)),
                  write_text(out.with_suffix(".html"), iis_html(result))]
    elif result["suite"] == "perf":
        paths.append(write_text(out.with_suffix(".md"), perf_markdown(result)))
    return paths
