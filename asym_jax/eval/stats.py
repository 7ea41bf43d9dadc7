"""IQA agreement statistics: the one implementation every job uses (DESIGN.md section 7).

Predictions are first *aligned* (:func:`align`): multiplied by -1 where the metric's direction and the human
score's direction differ (a distance against MOS, a similarity against DMOS), so that a perfect metric gets
+1 on every correlation whatever the directions.

* SRCC (Spearman), KRCC (Kendall's tau-b) and PLCC (Pearson) on the aligned predictions, as scipy computes
  them; ``None`` where a correlation is undefined (constant predictions or scores), never 0.
* PLCC and RMSE after a logistic mapping of the aligned predictions onto the human scores, fitted by
  ``scipy.optimize.curve_fit`` from the published initial values (REFERENCES.md):

  - ``"4"`` (default): ``(b1 - b2) / (1 + exp(-(x - b3) / b4)) + b2``, from ``[max(y), min(y), mean(x),
    std(x) / 4]``;
  - ``"5"`` (VQEG form): ``b1 * (0.5 - 1 / (1 + exp(b2 * (x - b3)))) + b4 * x + b5``, from ``[10, 0,
    mean(y), 0.1, 0.1]``.

  A fit that does not converge is reported (``converged: false`` with scipy's message), and the
  after-logistic figures are ``None``; the raw figures stand.
* 95% percentile bootstrap intervals of SRCC and PLCC, resampling *groups* (reference images) with
  replacement, seeded; resamples where the statistic is undefined are dropped and counted.
* SRCC per distortion type.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Callable, Mapping, Sequence

import numpy as np

from asym_jax.errors import InputError

__all__ = ["LOGISTIC_FORMS", "LogisticFit", "StatsError", "agreement", "align", "bootstrap_ci", "conventions",
           "fit_logistic", "krcc", "logistic", "plcc", "ranking_agreement", "srcc"]

LOGISTIC_FORMS = ("4", "5")


class StatsError(InputError):
    """Numbers that cannot be compared: mismatched lengths, too few values, non-finite entries."""


def _pair(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    if x.shape != y.shape:
        raise StatsError(f"{x.size} predictions for {y.size} human scores")
    if x.size < 3:
        raise StatsError(f"at least 3 values are needed for a correlation, got {x.size}")
    bad = ~(np.isfinite(x) & np.isfinite(y))
    if bad.any():
        raise StatsError(f"{int(bad.sum())} non-finite values (first at index {int(np.argmax(bad))})")
    return x, y


def _constant(v: np.ndarray) -> bool:
    return bool(np.all(v == v[0]))


def align(predictions, metric_higher_is_better: bool, score_higher_is_better: bool = True) -> np.ndarray:
    """The predictions with their sign turned where the metric's direction differs from the human score's
    (``score_higher_is_better``: True for MOS, False for DMOS)."""
    sign = 1.0 if bool(metric_higher_is_better) == bool(score_higher_is_better) else -1.0
    return sign * np.asarray(predictions, np.float64)


def _correlation(fn: Callable, x, y) -> float | None:
    x, y = _pair(x, y)
    if _constant(x) or _constant(y):
        return None
    value = float(fn(x, y).statistic)
    return value if np.isfinite(value) else None


def srcc(x, y) -> float | None:
    """Spearman rank correlation (scipy's, ties averaged); None where undefined."""
    from scipy import stats
    return _correlation(stats.spearmanr, x, y)


def krcc(x, y) -> float | None:
    """Kendall's tau-b (scipy's default); None where undefined."""
    from scipy import stats
    return _correlation(stats.kendalltau, x, y)


def plcc(x, y) -> float | None:
    """Pearson linear correlation; None where undefined."""
    from scipy import stats
    return _correlation(stats.pearsonr, x, y)


def logistic(x, params: Sequence[float], form: str = "4") -> np.ndarray:
    """The logistic mapping ``form`` (``"4"`` or ``"5"``, module docstring) at ``x``."""
    x = np.asarray(x, np.float64)
    if form == "4":
        b1, b2, b3, b4 = params
        with np.errstate(over="ignore"):
            return (b1 - b2) / (1.0 + np.exp(-(x - b3) / b4)) + b2
    if form == "5":
        b1, b2, b3, b4, b5 = params
        with np.errstate(over="ignore"):
            return b1 * (0.5 - 1.0 / (1.0 + np.exp(b2 * (x - b3)))) + b4 * x + b5
    raise StatsError(f"logistic form must be one of {LOGISTIC_FORMS}, got {form!r}")


def _initial(x: np.ndarray, y: np.ndarray, form: str) -> list[float]:
    if form == "4":
        return [float(np.max(y)), float(np.min(y)), float(np.mean(x)), float(np.std(x)) / 4.0]
    return [10.0, 0.0, float(np.mean(y)), 0.1, 0.1]


@dataclasses.dataclass(frozen=True)
class LogisticFit:
    form: str
    initial: tuple[float, ...]
    params: tuple[float, ...] | None  # None when the fit did not converge
    message: str

    @property
    def converged(self) -> bool:
        return self.params is not None

    def __call__(self, x) -> np.ndarray:
        if self.params is None:
            raise StatsError(f"the {self.form}-parameter logistic fit did not converge: {self.message}")
        return logistic(x, self.params, self.form)


def fit_logistic(x, y, form: str = "4", *, maxfev: int = 10000) -> LogisticFit:
    """Least-squares fit of the logistic ``form`` mapping predictions ``x`` onto human scores ``y``."""
    from scipy.optimize import OptimizeWarning, curve_fit

    if form not in LOGISTIC_FORMS:
        raise StatsError(f"logistic form must be one of {LOGISTIC_FORMS}, got {form!r}")
    x, y = _pair(x, y)
    initial = _initial(x, y, form)
    if _constant(x) or _constant(y):
        return LogisticFit(form, tuple(initial), None, "constant predictions or scores")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)  # covariance not estimated: the fit itself stands
            params, _ = curve_fit(lambda v, *b: logistic(v, b, form), x, y, p0=initial, maxfev=maxfev)
    except (RuntimeError, ValueError) as error:
        return LogisticFit(form, tuple(initial), None, str(error).strip())
    fitted = logistic(x, params, form)
    if not (np.all(np.isfinite(params)) and np.all(np.isfinite(fitted))):
        return LogisticFit(form, tuple(initial), None, "non-finite parameters or fitted values")
    return LogisticFit(form, tuple(initial), tuple(float(p) for p in params), "converged")


def bootstrap_ci(x, y, statistic: Callable[[np.ndarray, np.ndarray], float | None], *, groups=None,
                 n_resamples: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Percentile bootstrap interval of ``statistic(x, y)``, resampling ``groups`` (one label per value, e.g.
    the reference image; each value its own group when None) with replacement.

    Returns ``{"ci": [lo, hi] or None, "resamples": n_resamples, "undefined": count}``: resamples where the
    statistic is undefined (``None``, e.g. a constant resample) are dropped and counted; the interval is
    None when fewer than half are defined.
    """
    x, y = _pair(x, y)
    if n_resamples < 1:
        raise StatsError(f"n_resamples must be at least 1, got {n_resamples}")
    if not 0.0 < level < 1.0:
        raise StatsError(f"level must be in (0, 1), got {level}")
    labels = np.arange(x.size) if groups is None else np.asarray(groups)
    if labels.shape != x.shape:
        raise StatsError(f"{labels.size} group labels for {x.size} values")
    _, inverse = np.unique(labels, return_inverse=True)
    members = [np.flatnonzero(inverse == g) for g in range(int(inverse.max()) + 1)]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_resamples):
        chosen = rng.integers(0, len(members), len(members))
        index = np.concatenate([members[g] for g in chosen])
        value = statistic(x[index], y[index]) if index.size >= 3 else None
        if value is not None:
            values.append(value)
    undefined = n_resamples - len(values)
    ci = None
    if len(values) * 2 >= n_resamples:
        tail = 100.0 * (1.0 - level) / 2.0
        ci = [float(v) for v in np.percentile(values, [tail, 100.0 - tail])]
    return {"ci": ci, "resamples": n_resamples, "undefined": undefined}


def agreement(predictions, scores, *, groups=None, types=None, form: str = "4", n_resamples: int = 1000,
              seed: int = 0) -> dict:
    """Every statistic of the module docstring for *aligned* predictions against human ``scores``.

    ``groups``: the reference image of each value (bootstrap unit); ``types``: the distortion type of each
    value (SRCC per type), or None. ``n_resamples=0`` skips the intervals.
    """
    x, y = _pair(predictions, scores)
    fit = fit_logistic(x, y, form)
    row: dict = {"n": int(x.size), "srcc": srcc(x, y), "krcc": krcc(x, y), "plcc": plcc(x, y),
                 "plcc_logistic": None, "rmse_logistic": None,
                 "logistic": {"form": form, "converged": fit.converged, "message": fit.message,
                              "initial": list(fit.initial), "params": None if fit.params is None else list(fit.params)}}
    if fit.converged:
        fitted = fit(x)
        row["plcc_logistic"] = plcc(fitted, y)
        row["rmse_logistic"] = float(np.sqrt(np.mean((fitted - y) ** 2)))
    if n_resamples > 0:
        for name, fn in (("srcc", srcc), ("plcc", plcc)):
            boot = bootstrap_ci(x, y, fn, groups=groups, n_resamples=n_resamples, seed=seed)
            row[f"{name}_ci95"] = boot["ci"]
            row[f"{name}_ci95_undefined"] = boot["undefined"]
    if types is not None:
        labels = np.asarray(types)
        if labels.shape != x.shape:
            raise StatsError(f"{labels.size} distortion types for {x.size} values")
        row["per_distortion"] = {}
        for kind in sorted(set(labels.tolist()), key=str):
            mask = labels == kind
            row["per_distortion"][str(kind)] = {"n": int(mask.sum()),
                                                "srcc": srcc(x[mask], y[mask]) if mask.sum() >= 3 else None}
    return row


def ranking_agreement(assessment, optimisation, *, n_resamples: int = 1000, seed: int = 0,
                      level: float = 0.95) -> dict:
    """How well the ranking of M methods by one criterion (``assessment``: (M,), e.g. each fidelity metric's
    SRCC as an IQA model) agrees with their ranking by another measured on repeated runs (``optimisation``:
    (M, S, I), e.g. the quality of the SR model trained with each metric, for S seeds and I test images;
    higher is better on both).

    Returns ``{"n_methods", "seeds", "images", "kendall_tau", "srcc", "kendall_tau_ci95", "srcc_ci95",
    "resamples", "undefined"}``: Kendall's tau-b and Spearman's rho between ``assessment`` and the mean of
    ``optimisation`` over seeds and images, and percentile bootstrap intervals resampling seeds and images
    with replacement (the same draw for every method); undefined resamples (ties everywhere) are dropped and
    counted, and an interval is None when fewer than half are defined.
    """
    a = np.asarray(assessment, np.float64)
    o = np.asarray(optimisation, np.float64)
    if a.ndim != 1 or o.ndim != 3 or o.shape[0] != a.size:
        raise StatsError(f"need assessment (M,) and optimisation (M, seeds, images); got {a.shape} and {o.shape}")
    if a.size < 3:
        raise StatsError(f"a ranking agreement needs at least 3 methods, got {a.size}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(o))):
        raise StatsError("ranking agreement of non-finite values")
    if n_resamples < 0 or not 0.0 < level < 1.0:
        raise StatsError(f"n_resamples must be >= 0 and level in (0, 1), got {n_resamples}, {level}")
    _, seeds, images = o.shape
    row = {"n_methods": int(a.size), "seeds": int(seeds), "images": int(images),
           "kendall_tau": krcc(a, o.mean(axis=(1, 2))), "srcc": srcc(a, o.mean(axis=(1, 2))),
           "kendall_tau_ci95": None, "srcc_ci95": None, "resamples": int(n_resamples), "undefined": 0}
    if n_resamples == 0:
        return row
    rng = np.random.default_rng(seed)
    taus, rhos = [], []
    for _ in range(n_resamples):
        s, i = rng.integers(0, seeds, seeds), rng.integers(0, images, images)
        means = o[:, s][:, :, i].mean(axis=(1, 2))
        tau, rho = krcc(a, means), srcc(a, means)
        if tau is not None and rho is not None:
            taus.append(tau)
            rhos.append(rho)
    row["undefined"] = n_resamples - len(taus)
    if len(taus) * 2 >= n_resamples:
        tail = 100.0 * (1.0 - level) / 2.0
        row["kendall_tau_ci95"] = [float(v) for v in np.percentile(taus, [tail, 100.0 - tail])]
        row["srcc_ci95"] = [float(v) for v in np.percentile(rhos, [tail, 100.0 - tail])]
    return row


def conventions(form: str = "4", n_resamples: int = 1000, seed: int = 0) -> Mapping[str, str]:
    """The conventions behind :func:`agreement`'s numbers, for reports."""
    return {
        "alignment": "predictions multiplied by -1 where the metric's direction differs from the human score's, "
                     "so a perfect metric gets +1",
        "srcc": "scipy.stats.spearmanr (ties averaged)", "krcc": "scipy.stats.kendalltau (tau-b)",
        "plcc": "scipy.stats.pearsonr on the aligned predictions (no fit)",
        "logistic": ("4-parameter: (b1 - b2) / (1 + exp(-(x - b3) / b4)) + b2 from [max(y), min(y), mean(x), std(x)/4]"
                     if form == "4" else
                     "5-parameter (VQEG): b1 * (0.5 - 1 / (1 + exp(b2 * (x - b3)))) + b4 * x + b5 from "
                     "[10, 0, mean(y), 0.1, 0.1]") + "; scipy.optimize.curve_fit, maxfev 10000",
        "bootstrap": f"95% percentile interval, {n_resamples} resamples of reference-image groups with "
                     f"replacement, numpy default_rng({seed})",
        "undefined": "null where a correlation is undefined (constant values) or the logistic fit did not converge",
    }
