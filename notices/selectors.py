"""Reading the outbox from other apps."""

from notices.models import Notice


def notice_promised(*, channel: str, recipient: str, occasion: str) -> bool:
    """Whether this recipient has a notice of this occasion on this channel already."""
    return Notice.objects.filter(
        channel=str(channel), recipient=recipient, occasion=occasion
    ).exists()
