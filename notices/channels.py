"""The email channel: Django's mailers (console on the embedded default, SMTP in production).

The payload carries the message: {"text": plain text, "html": optional HTML alternative,
"images": optional {content id: base64 PNG} shown inline (cid:) by the HTML}.
"""

from __future__ import annotations

import base64
import smtplib
from email.message import MIMEPart
from typing import Any

from django.core.mail import EmailMultiAlternatives

from notices.models import Channel, Notice
from notices.senders import Permanent, Transient, sender


def _message(notice: Notice) -> EmailMultiAlternatives:
    payload = notice.payload
    message = EmailMultiAlternatives(
        notice.subject, payload.get("text", ""), None, [notice.recipient]
    )
    if payload.get("html"):
        message.attach_alternative(payload["html"], "text/html")
    for cid, data in (payload.get("images") or {}).items():
        image = MIMEPart()
        image.set_content(
            base64.b64decode(data),
            maintype="image",
            subtype="png",
            disposition="inline",
            filename=f"{cid}.png",
            cid=f"<{cid}>",
        )
        message.attach(image)
    return message


@sender(Channel.EMAIL)
def send_email(notice: Notice) -> dict[str, Any] | None:
    try:
        _message(notice).send()
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        if all(400 <= code < 500 for code in codes):
            raise Transient(
                f"the mail server refused {notice.recipient} for now ({codes})"
            ) from exc
        raise Permanent(
            f"the mail server refused the address {notice.recipient} ({codes})"
        ) from exc
    except smtplib.SMTPResponseException as exc:
        text = f"the mail server answered {exc.smtp_code}: {exc.smtp_error!r}"
        if 400 <= exc.smtp_code < 500:
            raise Transient(text) from exc
        raise Permanent(text) from exc
    except (TimeoutError, smtplib.SMTPException, OSError) as exc:
        raise Transient(f"the mail server could not be reached: {exc}") from exc
    return None
