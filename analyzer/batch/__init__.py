"""Many captures at once: discovery, a pool (or a Dask cluster) of workers, one report per
capture and a summary of them all. ``analyzer.cli.batch`` is the command over it."""

from analyzer.batch.run import BatchOutcome, Progress, load_states, run_batch, still_valid

__all__ = ["BatchOutcome", "Progress", "load_states", "run_batch", "still_valid"]
