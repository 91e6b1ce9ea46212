"""Incident timelines and response reports for managers.

figures (response times per incident, per brand and ISO week) -> timeline (chart series, markers,
events, posts of one incident) -> chart (server-side SVG) -> export (HTML, Markdown, CSV) ->
routes (web page section and API), cli (`flarewatch report`), digest (weekly Slack message).
"""
