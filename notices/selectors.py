"""Reading the outbox from other apps."""

from notices.models import Notice


def notice_promised(*, channel: str, recipient: str, occasion: str) -> bool:
    """Whether this recipient has a notice of this occasion on this channel already."""
    return Notice.objects.filter(
        channel=str(channel), recipient=recipient, occasion=occasion
    ).exists()


def occasions_promised(*, channel: str, occasions: list[str]) -> set[tuple[str, str]]:
    """Of these occasions, the (recipient, occasion) pairs promised on this channel already."""
    rows = Notice.objects.filter(channel=str(channel), occasion__in=occasions).values_list(
        "recipient", "occasion"
    )
    return set(rows)
