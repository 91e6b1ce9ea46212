"""Alerts by e-mail over SMTP (stdlib smtplib), with STARTTLS and login when configured.

The Message-ID is derived from the outbox key, so a message resent after a crash is recognisably
the same one (mail clients and many servers collapse duplicates by Message-ID).
"""
from __future__ import annotations

import hashlib
import smtplib
from email.message import EmailMessage
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from alerts.base import AlertJob, Delivered, PermanentError, RetryableError, register_sender
from monitor.core.escape import strip_controls
from alerts.summary import about_line, event_line, headline, sparkline, state_line, what_moved
from monitor.core.settings import OptionalSecret, OptionalText, Strict
from monitor.core.enums import EventKind

if TYPE_CHECKING:
    from alerts.settings import AlertSettings


class EmailSettings(Strict):
    """[alerts.email]: the SMTP server alerts are sent through."""

    host: str
    port: int = Field(default=587, ge=1, le=65535)
    username: OptionalText = None
    password: OptionalSecret = None
    starttls: bool = True
    sender: str = Field(description="From: address")
    timeout_seconds: float = Field(default=20, gt=0)


def message_id(key: str) -> str:
    return f"<{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}@flarewatch>"


def compose(job: AlertJob, settings: EmailSettings) -> EmailMessage:
    view = job.view
    subject = headline(view)
    if job.event is not None and job.event.kind != EventKind.OPENED:
        subject = f"{event_line(job.event)} - {subject}"
    lines = [headline(view), "", what_moved(view), state_line(view, job.now)]
    about = about_line(view)
    if about:
        lines += ["", about]
        lines += [f"  \"{' '.join(post.text.split())[:300]}\" ({post.author})" for post in view.theme_posts]
    if view.trend:
        lines.append(f"Trend (negative posts/min): {sparkline(view.trend)}")
    if view.top_posts:
        lines += ["", "Top posts:"]
        for post in view.top_posts:
            lines.append(f"- {post.author} (reach {post.reach:,}) {post.url or ''}")
            lines.append(f"  {' '.join(post.text.split())[:500]}")
    if view.web_url:
        lines += ["", f"Timeline: {view.web_url}"]
    message = EmailMessage()
    message["Subject"] = " ".join(strip_controls(subject).split())[:200]
    message["From"] = settings.sender
    message["To"] = job.target
    message["Message-ID"] = message_id(job.idempotency_key)
    message["X-Flarewatch-Incident"] = str(view.id)
    message.set_content(strip_controls("\n".join(lines)))
    return message


@register_sender
class EmailSender:
    channel: ClassVar[str] = "email"
    settings_model: ClassVar[type[Strict] | None] = EmailSettings

    def __init__(self, settings: EmailSettings) -> None:
        self.settings = settings

    @classmethod
    def configured(cls, settings: AlertSettings) -> EmailSender | None:
        return cls(settings.email) if settings.email is not None else None

    def send(self, job: AlertJob) -> Delivered:
        s = self.settings
        message = compose(job, s)
        try:
            with smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds) as smtp:
                if s.starttls:
                    smtp.starttls()
                if s.username and s.password:
                    smtp.login(s.username, s.password.get_secret_value())
                smtp.send_message(message)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPAuthenticationError,
                smtplib.SMTPNotSupportedError) as exc:
            raise PermanentError(f"SMTP refused the alert: {exc}") from None
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code >= 500:
                raise PermanentError(f"SMTP refused the alert: {exc.smtp_code} {exc.smtp_error!r}") from None
            raise RetryableError(f"SMTP temporary failure: {exc.smtp_code}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise RetryableError(f"SMTP unreachable: {exc!r}") from None
        return Delivered(message["Message-ID"])
