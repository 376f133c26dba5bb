"""The report's plots as inline SVG (matplotlib, text kept as text so it is selectable and crisp
when zoomed). Each function returns an `<svg>` element string, or None when there is nothing to draw."""

from __future__ import annotations

import io
import re
from typing import Any

FIGSIZE = (5.1, 3.8)  # inches: two plots side by side on a laptop screen
COLORS = {"teacher": "#7f7f7f", "student": "#1f77b4", "student_pruned": "#17becf", "student_int8": "#2ca02c",
          "onnx": "#ff7f0e", "executorch": "#d62728", "coreml": "#9467bd"}
RUN_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"  # real <text>, not paths
    plt.rcParams["svg.hashsalt"] = "mobilekd"  # stable ids: the same run gives the same file
    return plt


def to_svg(fig: Any, label: str) -> str:
    plt = _plt()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    return re.sub(r"<svg ", f"<svg role='img' aria-label='{label}' class='plot' ", text, count=1)


def pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The frontier: points no other point beats on both smaller x and larger y, sorted by x."""
    front: list[tuple[float, float]] = []
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or y > front[-1][1]:
            front.append((x, y))
    return front


def scatter(points: list[dict[str, Any]], xkey: str, xlabel: str, ylabel: str, title: str,
            color_by: str = "group") -> str | None:
    """Points {label, group, y, bytes, ms} with their Pareto frontier, x on a log scale."""
    pts = [p for p in points if p.get(xkey)]
    if not pts:
        return None
    plt = _plt()
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    scale = 1e3 if xkey == "bytes" else 1.0
    fig, ax = plt.subplots(figsize=FIGSIZE)
    for p in pts:
        marker = ("s" if "(torch)" in p["label"] else "*" if p["label"].endswith("native")
                  else "^" if "/int8" in p["label"] else "o")
        color = p.get("color") or COLORS.get(p[color_by], "#333")
        ax.scatter(p[xkey] / scale, p["y"], s=70 if marker == "*" else 42, color=color, marker=marker, zorder=3,
                   label=p["label"], edgecolors="white", linewidths=0.5)
    for run in sorted({p.get("run", "") for p in pts}):
        mine = [p for p in pts if p.get("run", "") == run]
        front = pareto([(p[xkey] / scale, p["y"]) for p in mine])
        if len(front) > 1:
            color = mine[0].get("color") or "#2ca02c"
            ax.step([f[0] for f in front], [f[1] for f in front], where="post", color=color, alpha=0.45, lw=1.5,
                    label=f"Pareto frontier {run}".strip(), zorder=2)
    ys = [p["y"] for p in pts]
    pad = max(0.01, (max(ys) - min(ys)) * 0.1)
    ax.set_ylim(min(ys) - pad, max(ys) + pad)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=11)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=7, ncol=3, frameon=False)
    fig.tight_layout()
    return to_svg(fig, title)


# Keys of a history row that are not loss terms.
_NOT_LOSS = ("epoch", "lr", "kd_alpha", "kd_temperature", "seconds")


def curves(history: list[dict[str, Any]], metric: str, title: str) -> str | None:
    """Loss terms per epoch (left axis) and the validation metric (right axis)."""
    if not history:
        return None
    plt = _plt()
    epochs = [h.get("epoch", i + 1) for i, h in enumerate(history)]
    losses = [k for k in history[0] if not k.startswith("val_") and k not in _NOT_LOSS
              and isinstance(history[0][k], (int, float))]
    fig, ax = plt.subplots(figsize=FIGSIZE)
    for k in losses:
        ax.plot(epochs, [h.get(k) for h in history], marker=".", lw=1.4, label=k)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    ax.grid(True, alpha=0.25)
    val = f"val_{metric}"
    handles, labels = ax.get_legend_handles_labels()
    if any(val in h for h in history):
        ax2 = ax.twinx()
        ax2.plot(epochs, [h.get(val) for h in history], color="black", lw=2, ls="--", label=val)
        ax2.set_ylabel(val)
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.18), fontsize=7, ncol=3, frameon=False)
    ax.set_title(title, fontsize=11)
    fig.tight_layout()
    return to_svg(fig, title)


def bars(labels: list[str], series: dict[str, list[float]], ylabel: str, title: str, log: bool = False) -> str | None:
    """Grouped vertical bars, one group per label, one bar per series."""
    if not labels or not series:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(FIGSIZE[0], 0.5 * len(labels) * len(series) + 1.5), FIGSIZE[1]))
    width = 0.8 / len(series)
    for i, (name, values) in enumerate(series.items()):
        ax.bar([j + i * width for j in range(len(labels))], values, width=width, label=name)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(labels))])
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=11)
    ax.grid(True, axis="y", alpha=0.25)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return to_svg(fig, title)


def heatmap(matrix: list[list[int]], labels: list[str], title: str) -> str | None:
    """A confusion matrix: rows true class, columns predicted, counts written in each cell."""
    if not matrix:
        return None
    plt = _plt()
    n = len(matrix)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * n + 1.5),) * 2)
    ax.imshow(matrix, cmap="Blues")
    top = max(max(r) for r in matrix) or 1
    for i, row in enumerate(matrix):
        for j, v in enumerate(row):
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=7, color="white" if v > top / 2 else "black")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=7)
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=11)
    fig.tight_layout()
    return to_svg(fig, title)
