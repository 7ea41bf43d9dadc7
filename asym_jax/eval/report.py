"""Pieces of the IQA jobs' reports (``iqa_fr``, ``iqa_fr_train``, ``iqa_nr``): number formatting and the
scatter plot of predictions against human scores."""

from __future__ import annotations

import io
import os

import numpy as np

__all__ = ["ci_text", "fmt", "scatter_plot", "subplots"]


def fmt(value, digits: int = 4) -> str:
    """A statistic for a table: ``n/a`` where it is undefined (``None``)."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def ci_text(row: dict, name: str) -> str:
    """`` [lo, hi]`` of ``row[name + "_ci95"]``, or nothing where there is no interval."""
    value = row.get(f"{name}_ci95")
    return "" if not value else f" [{value[0]:.3f}, {value[1]:.3f}]"


def subplots(*args, figsize=None, dpi=None, **kwargs):
    """A matplotlib figure and its axes (``Figure.subplots`` arguments), made outside pyplot: no global
    backend is switched (a notebook's inline plots keep working) and nothing stays open after saving."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    return fig, fig.subplots(*args, **kwargs)


def scatter_plot(path: str | os.PathLike, row: dict, prediction, scores, *, xlabel: str, score_name: str) -> None:
    """``scores`` against ``prediction`` (a PNG), with the row's fitted logistic where it converged; the
    title gives the row's dataset, SRCC and PLCC. Rendered in memory and written atomically (also to a
    ``gs://`` workdir)."""
    from asym_jax.eval.stats import logistic
    from asym_jax.io import write_atomic

    prediction = np.asarray(prediction, np.float64)
    fig, ax = subplots(figsize=(4.5, 3.6), dpi=120)
    ax.scatter(prediction, scores, s=6, alpha=0.6)
    fit = row.get("logistic") or {}
    if fit.get("converged"):
        grid = np.linspace(prediction.min(), prediction.max(), 200)
        ax.plot(grid, logistic(grid, fit["params"], fit["form"]), color="C1", lw=1.5,
                label=f"{fit['form']}-parameter logistic")
        ax.legend(loc="best", fontsize=7)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(score_name, fontsize=8)
    ax.set_title(f"{row['dataset']}: SRCC {fmt(row['srcc'], 3)}, PLCC {fmt(row['plcc'], 3)}", fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    write_atomic(path, buffer.getvalue())
