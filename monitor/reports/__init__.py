"""Incident timelines and response reports for managers.

figures (response times per incident, per brand and ISO week) -> timeline (chart series, markers,
events, posts of one incident) -> chart (server-side SVG) -> export (HTML, Markdown, CSV) ->
digest (weekly Slack message). The web section and API are `monitor.web.reports`, the commands
`monitor.cli.reports` (`flarewatch report`).
"""
