"""The single jobs and their ``run_job(config, workdir)``: what :mod:`asym_jax.main` runs, and what a study
(:mod:`asym_jax.experiments.study`, which the entry point adds to these) runs as its cells."""

from __future__ import annotations

__all__ = ["job_runners"]


def job_runners() -> dict:
    """``{job name: run_job(config, workdir)}`` of every single job."""
    from asym_jax.eval import iqa_fr, score_job
    from asym_jax.train import iqa_fr_train, iqa_nr, sr_gan
    return {"iqa_fr": iqa_fr.run_job, "iqa_fr_train": iqa_fr_train.run_job, "iqa_nr": iqa_nr.run_job,
            "score": score_job.run_job, "sr_gan": sr_gan.run_job}
