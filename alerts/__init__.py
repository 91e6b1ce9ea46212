"""Getting incidents in front of the right people: Slack (Block Kit, threads, buttons), escalation,
console, webhooks and e-mail, delivered exactly once through an outbox.

Entry points: `routing.notify` (called with every incident change, in its transaction),
`delivery.deliver_pending` with `senders.build_senders` (the deliver job; channels register in `base.SENDERS`), `escalation.escalate_due`
(the escalate job), `actions` (acknowledge/snooze/resolve/silence/claim, shared by Slack, web and
CLI), `interactivity.make_slack_router` / `start_socket_mode` (button clicks).
"""
