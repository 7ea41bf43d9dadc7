"""The study driver and its report: grids of ordinary jobs (cells), run, resumed and reported."""
