"""Point 5: an anonymous retro. Nobody, the facilitator included, sees who wrote a why or cast
a vote: not on any board, and not through the API."""

import json
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.board import (
    COUPON,
    SSO,
    add_first_why,
    advance_to_whys,
    card,
    create_retro,
    facilitate,
    open_board,
    vote_button,
    votes,
    why_item,
    why_texts,
)
from tests.browser.people import People
from tests.browser.stack import TEAM, Stack

pytestmark = pytest.mark.browser

# Who wrote what, and every way their names could show.
WRITERS = {
    "engineer": ("engineer", "Erik"),
    "engineer2": ("engineer2",),
    "facilitator": ("facilitator", "Fatima"),
}
WHYS = {
    "engineer": (SSO, "The staging proxy rewrites cookies on the way through"),
    "engineer2": (SSO, "Cross-domain cookies were never in the test plan"),
    "facilitator": (COUPON, "The refresh replays the POST without an idempotency key"),
}


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_an_anonymous_retro_shows_no_author_on_any_board_nor_in_the_api(
    people: People, stack: Stack
):
    facilitator = people.open("facilitator")
    retro_id = create_retro(
        facilitator.page, "Anonymous retro", escapes=(SSO, COUPON), anonymous=True
    )
    expect(facilitator.page.get_by_text("anonymous: nobody sees who wrote a why")).to_be_visible()
    advance_to_whys(facilitator.page)
    crowd = {"facilitator": facilitator}
    for username in ("engineer", "engineer2"):
        crowd[username] = people.open(username)
        open_board(crowd[username].page, retro_id)

    for username, (escape, text) in WHYS.items():
        add_first_why(crowd[username].page, escape, text)
        expect(why_texts(crowd[username].page, escape, text)).to_have_count(1)
    facilitate(facilitator.page, "Open dot voting")
    vote_button(crowd["engineer"].page, SSO).click()

    for person in crowd.values():
        page = person.page
        expect(votes(page, SSO)).to_have_text("1 vote")
        expect(page.locator(".why-author")).to_have_count(0)
        for escape, text in WHYS.values():
            expect(why_texts(page, escape, text)).to_have_count(1)
            shown = why_item(page, escape, text).inner_text()
            for name in (name for names in WRITERS.values() for name in names):
                assert name not in shown, (person.username, shown)
        for escape in (SSO, COUPON):
            # Only the viewer's own dots are marked: the facilitator sees none of them as anyone's.
            own = 1 if person.username == "engineer" and escape == SSO else 0
            expect(card(page, escape).locator(".my-votes")).to_have_count(own)

    # The API, with the facilitator's own token, does not tell either.
    token = stack.manage("issue_token", "facilitator", "--name", "browser test").strip()
    response = httpx.get(
        f"{stack.url}/api/v1/teams/{TEAM}/retros/{retro_id}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["anonymous"] is True
    whys = [why for escape in body["escapes"] for why in escape["whys"]]
    assert sorted(why["text"] for why in whys) == sorted(text for _, text in WHYS.values())
    assert not {"author", "voter", "voters", "created_by"} & _keys(body)
    text = json.dumps(body)
    for name in (*WRITERS["engineer"], *WRITERS["engineer2"]):
        assert name not in text
