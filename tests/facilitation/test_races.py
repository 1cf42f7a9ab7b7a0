"""Many people on one board at once: the retro row lock makes their writes queue up.

Each thread has its own database connection (Django's are per thread) and closes it at
the end. Run on SQLite (a file copy of the test database, see shared_db.py) and on
PostgreSQL (DATABASE_URL set).
"""

import threading
from collections.abc import Callable

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from retros import facilitation, services
from retros.models import Phase, Retrospective, Vote, Why
from tests.conftest import client_for
from tests.facilitation.conftest import HX, advance_to, url
from tests.facilitation.shared_db import shareable_database

pytestmark = pytest.mark.django_db(transaction=True)


def at_once(count: int, work: Callable[[int], str]) -> list[str]:
    """Run `work(i)` in `count` threads released together; what each returned or raised."""
    barrier = threading.Barrier(count)
    results: list[str] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            try:
                outcome = work(i)
            except ValidationError as exc:
                outcome = "refused: " + " ".join(exc.messages)
            except Exception as exc:  # a crash must show up in the results, not vanish
                outcome = f"crashed: {exc!r}"
            with lock:
                results.append(outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == count, "a thread hung"
    return results


def test_fifty_simultaneous_next_phase_clicks_make_exactly_one_transition(retro, tmp_path):
    with shareable_database(tmp_path):
        before = Retrospective.objects.get(pk=retro.pk).version

        def click(_: int) -> str:
            page = Retrospective.objects.get(pk=retro.pk)  # each click has its own page
            services.retro_advance(
                retro=page, expected_phase=Phase.GATHER, to_phase=Phase.CATEGORIZE
            )
            return "moved"

        results = at_once(50, click)

        assert results.count("moved") == 1, results
        refusals = [r for r in results if r != "moved"]
        assert len(refusals) == 49
        assert all("already in the Categorize phase" in r for r in refusals), refusals
        fresh = Retrospective.objects.get(pk=retro.pk)
        assert fresh.phase == Phase.CATEGORIZE
        assert fresh.version == before + 1


def test_twenty_simultaneous_votes_never_pass_the_allowance(retro, escape, member, tmp_path):
    facilitation.voting_open(retro=retro, votes_per_person=3)
    with shareable_database(tmp_path):
        before = Retrospective.objects.get(pk=retro.pk).version

        def vote(_: int) -> str:
            facilitation.vote_cast(
                retro=Retrospective.objects.get(pk=retro.pk), escape=escape, voter=member
            )
            return "voted"

        results = at_once(20, vote)

        assert results.count("voted") == 3, results
        assert results.count("refused: You have used all 3 of your votes.") == 17, results
        assert Vote.objects.filter(retro=retro, voter=member).count() == 3
        assert Retrospective.objects.get(pk=retro.pk).version == before + 3


def test_two_edits_of_one_why_from_one_revision_give_one_success_and_one_conflict(
    retro, escape, member, facilitator, tmp_path
):
    advance_to(retro, Phase.WHYS)
    why = services.why_add(retro=retro, escape=escape, text="Staging has no latency", author=member)
    texts = ["Staging has no network latency", "Staging never simulates gateway latency"]
    with shareable_database(tmp_path):
        clients = [client_for(member), client_for(facilitator)]

        def edit(i: int) -> str:
            response = clients[i].post(
                url("retro_why_edit", retro, why_id=why.pk),
                {"text": texts[i], "revision": 1},
                headers=HX,
            )
            assert response.status_code == 200
            return response.content.decode()

        pages = at_once(2, edit)

        why.refresh_from_db()
        assert why.revision == 2
        winner = texts.index(why.text)
        conflicts = [page for page in pages if "Someone changed this why" in page]
        assert len(conflicts) == 1, "exactly one edit is refused"
        # The refused editor sees the newer text, and keeps their own in the form.
        assert f"It now reads: “{why.text}”" in conflicts[0]
        assert f'value="{texts[1 - winner]}"' in conflicts[0]
        assert Why.objects.get(pk=why.pk).text == texts[winner]
