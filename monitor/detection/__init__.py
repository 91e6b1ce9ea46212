"""Spike detection: minute aggregates, a robust baseline, calibrated detectors and the incident lifecycle.

aggregates (buckets kept as posts are scored) -> baseline / baseline_store (expected counts) ->
volume, share, viral (tests, each returning `signals.Signal`) via windows, whose p-values
`calibration` turns into how often the brand's own background reaches them -> lifecycle (the
open / severity / close rules) and incidents (the daemon's detect job). backtest and replay run
the same code offline (`flarewatch backtest`, `flarewatch replay`).
"""
