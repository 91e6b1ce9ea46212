"""The web app: staff pages, the REST API, /healthz and the ingest webhook (see app.py)."""
