"""The core layer: storage, clock, settings base, posts, brand matching and the domain services
(ingest, review queue, accounts). It imports nothing from connectors, models, alerts, detection,
reports, web or the CLI; those build on it.
"""
