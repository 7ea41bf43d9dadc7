"""IQA agreement statistics (asym_jax.eval.stats) against scipy and the published logistic forms."""

import numpy as np
import pytest
from scipy import optimize, stats

from asym_jax.eval import stats as iqa_stats


@pytest.fixture(scope="module")
def scored():
    """120 predictions with ties against noisy monotone human scores."""
    rng = np.random.default_rng(3)
    x = np.round(rng.uniform(0, 10, 120), 1)  # rounding makes ties
    y = 1.0 + 4.0 / (1.0 + np.exp(-(x - 5.0) / 1.5)) + rng.normal(0, 0.3, x.size)
    return x, y


def test_correlations_equal_scipy(scored):
    x, y = scored
    assert iqa_stats.srcc(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert iqa_stats.krcc(x, y) == pytest.approx(stats.kendalltau(x, y, variant="b").statistic, abs=1e-12)
    assert iqa_stats.plcc(x, y) == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)


def test_alignment_gives_a_perfect_metric_plus_one(scored):
    x, _ = scored
    mos = np.arange(x.size, dtype=float)
    distance = -mos * 0.01  # lower is better, perfectly ordered
    aligned = iqa_stats.align(distance, metric_higher_is_better=False, score_higher_is_better=True)
    assert iqa_stats.srcc(aligned, mos) == pytest.approx(1.0) and iqa_stats.plcc(aligned, mos) == pytest.approx(1.0)
    dmos = -mos  # a similarity against DMOS (lower DMOS is better)
    aligned = iqa_stats.align(mos, metric_higher_is_better=True, score_higher_is_better=False)
    assert iqa_stats.krcc(aligned, dmos) == pytest.approx(1.0)
    assert np.array_equal(iqa_stats.align(mos, True, True), mos)


def _four(x, b1, b2, b3, b4):  # the published 4-parameter form, written out independently
    return b2 + (b1 - b2) / (1.0 + np.exp((b3 - x) / b4))


def _five(x, b1, b2, b3, b4, b5):  # the VQEG 5-parameter form
    return b1 * (0.5 - 1.0 / (1.0 + np.exp(b2 * (x - b3)))) + b4 * x + b5


def test_logistic_fits_follow_the_published_forms_and_initial_values(scored):
    x, y = scored
    fit = iqa_stats.fit_logistic(x, y, "4")
    assert fit.initial == (y.max(), y.min(), x.mean(), x.std() / 4)
    expected, _ = optimize.curve_fit(_four, x, y, p0=list(fit.initial), maxfev=10000)
    np.testing.assert_allclose(fit.params, expected, rtol=1e-6)
    np.testing.assert_allclose(fit(x), _four(x, *expected), rtol=1e-9)
    assert fit.params[2] == pytest.approx(5.0, abs=0.3)  # the generating midpoint

    fit5 = iqa_stats.fit_logistic(x, y, "5")
    assert fit5.initial == (10.0, 0.0, y.mean(), 0.1, 0.1)
    expected5, _ = optimize.curve_fit(_five, x, y, p0=list(fit5.initial), maxfev=10000)
    np.testing.assert_allclose(fit5(x), _five(x, *expected5), rtol=1e-6, atol=1e-9)

    row = iqa_stats.agreement(x, y, n_resamples=0)
    fitted = _four(x, *expected)
    assert row["plcc_logistic"] == pytest.approx(stats.pearsonr(fitted, y).statistic, abs=1e-9)
    assert row["rmse_logistic"] == pytest.approx(np.sqrt(np.mean((fitted - y) ** 2)), rel=1e-6)
    assert row["plcc_logistic"] > row["plcc"]  # the mapping straightens a sigmoid relation


def test_a_fit_that_does_not_converge_is_reported_and_raw_figures_stand(scored):
    x, y = scored
    fit = iqa_stats.fit_logistic(x, y, "4", maxfev=2)
    assert not fit.converged and "maxfev" in fit.message, fit.message
    with pytest.raises(iqa_stats.StatsError, match="did not converge"):
        fit(x)


def test_undefined_correlations_are_none_not_zero():
    x = np.full(10, 0.5)
    y = np.arange(10.0)
    assert iqa_stats.srcc(x, y) is None and iqa_stats.krcc(x, y) is None and iqa_stats.plcc(x, y) is None
    row = iqa_stats.agreement(x, y, n_resamples=20)
    assert row["srcc"] is None and row["plcc_logistic"] is None and not row["logistic"]["converged"]
    assert row["srcc_ci95"] is None and row["srcc_ci95_undefined"] == 20


def test_bootstrap_interval_matches_scipy_for_single_values(scored):
    x, y = scored
    ours = iqa_stats.bootstrap_ci(x, y, iqa_stats.plcc, n_resamples=2000, seed=1)
    theirs = stats.bootstrap((x, y), lambda a, b: stats.pearsonr(a, b).statistic, paired=True, vectorized=False,
                             n_resamples=2000, method="percentile", random_state=np.random.default_rng(1))
    # Different draws of the same resampling scheme: equal to Monte Carlo error.
    assert ours["ci"] == pytest.approx([theirs.confidence_interval.low, theirs.confidence_interval.high], abs=0.01)
    assert ours["undefined"] == 0


def test_bootstrap_resamples_whole_reference_groups(scored):
    """Each value duplicated as a group of two: resampling groups draws the same groups as resampling the
    values alone (same seed), and duplicating every pair leaves both correlations unchanged."""
    x, y = scored
    for statistic in (iqa_stats.srcc, iqa_stats.plcc):
        single = iqa_stats.bootstrap_ci(x, y, statistic, n_resamples=200, seed=4)
        grouped = iqa_stats.bootstrap_ci(np.repeat(x, 2), np.repeat(y, 2), statistic,
                                         groups=np.repeat(np.arange(x.size), 2), n_resamples=200, seed=4)
        np.testing.assert_allclose(grouped["ci"], single["ci"], rtol=1e-9)
        ungrouped = iqa_stats.bootstrap_ci(np.repeat(x, 2), np.repeat(y, 2), statistic, n_resamples=200, seed=4)
        assert ungrouped["ci"][1] - ungrouped["ci"][0] < single["ci"][1] - single["ci"][0]  # too narrow


def test_agreement_row_per_distortion_and_bad_input(scored):
    x, y = scored
    types = np.array(["blur", "noise", "jpeg"] * 40)
    row = iqa_stats.agreement(x, y, groups=np.arange(x.size) // 5, types=types, n_resamples=50)
    assert row["n"] == 120 and set(row["per_distortion"]) == {"blur", "jpeg", "noise"}
    mask = types == "noise"
    assert row["per_distortion"]["noise"]["srcc"] == pytest.approx(stats.spearmanr(x[mask], y[mask]).statistic)
    lo, hi = row["srcc_ci95"]
    assert lo <= row["srcc"] <= hi
    with pytest.raises(iqa_stats.StatsError, match="3 predictions for 4 human scores"):
        iqa_stats.agreement([1, 2, 3], [1, 2, 3, 4])
    with pytest.raises(iqa_stats.StatsError, match="non-finite"):
        iqa_stats.srcc([1, np.nan, 3], [1, 2, 3])
    with pytest.raises(iqa_stats.StatsError, match="logistic form"):
        iqa_stats.fit_logistic(x, y, "3")
