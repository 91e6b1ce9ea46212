"""Spike detection: minute aggregates, an hour-of-week baseline, detectors and the incident lifecycle.

aggregates (buckets kept as posts are scored) -> baseline / baseline_store (expected counts) ->
volume, share, viral (tests, each returning `signals.Signal`) via windows -> incidents (lifecycle,
the daemon's detect job). backtest and `monitor.replay` run the same code offline (`flarewatch
backtest`, `flarewatch replay`).
"""
