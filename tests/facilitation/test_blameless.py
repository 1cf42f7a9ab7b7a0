"""Blameless wording: whys that point at a person are caught and turned towards the process."""

import pytest

from retros import services
from retros.blameless import PERSON, PHRASE, ROLE, blame_findings, gerund, suggest_rewording
from retros.models import Phase, Why
from tests.conftest import client_for
from tests.facilitation.conftest import HX, advance_to, url

MEMBERS = ["sam", "Sam", "Okafor", "mia", "will", "Will", "fred", "admin", "Admin"]


@pytest.mark.parametrize(
    ("text", "flagged"),
    [
        ("Sam forgot to run the migration", ["Sam", "forgot"]),
        ("sam's review missed it", ["sam"]),
        ("Ms Okafor merged it late", ["Okafor"]),
        ("QA missed the null check", ["QA missed"]),
        ("The devs didn't run the suite", ["The devs didn't"]),
        ("It was human error", ["human error"]),
        ("A careless change to the config", ["careless"]),
        ("Somebody was lazy", ["lazy"]),
        ("Sloppy review", ["Sloppy"]),
        ("Fred didn't bother to update the runbook", ["Fred", "didn't bother"]),
        ("They should have known better", ["should have known better"]),
        ("It was her fault", ["her fault"]),
        ("A mistake by the intern", ["mistake by"]),
        ("Ops dropped the ball", ["dropped the ball"]),
        ("Nobody was paying attention", []),
        ("He wasn't paying attention to the alert", ["wasn't paying attention"]),
        ("The fix Will wrote skipped the check", ["Will"]),
        ("It broke after Admin merged it", ["Admin"]),
        # A name that is also a word counts capitalised, and not at the start of a sentence.
        ("Will forgot the flag", ["forgot"]),
        ("Admin pages have no E2E test. Nobody asked the admin", []),
        # Nothing personal in these: the process, technical words, longer words.
        ("The forgot-password flow has no test", []),
        ("The forgotten-password flow broke", []),
        ("Lazy loading hid the error in the bundle", []),
        ("Fault tolerance was off in staging", []),
        ("The test will fail on Mondays", []),
        ("Samuel's mock was lenient", []),
        ("The staging environment has no gateway latency", []),
        ("The alert was suppressed as flaky", []),
        ("Sampling hid the spike", []),
        ("The mistakes table was empty", []),
    ],
)
def test_blame_findings(text, flagged):
    assert [f.text for f in blame_findings(text, MEMBERS)] == flagged


def test_findings_say_what_kind_of_blame_they_are():
    kinds = {f.text: f.kind for f in blame_findings("Sam said QA missed it, careless", MEMBERS)}
    assert kinds == {"Sam": PERSON, "QA missed": ROLE, "careless": PHRASE}
    finding = blame_findings("Sam forgot", MEMBERS)[0]
    assert finding.message == "“Sam” names a person"
    assert (finding.start, finding.end) == (0, 3)


def test_a_one_letter_name_is_not_looked_for():
    assert blame_findings("A bug in module a", ["a", "A"]) == []


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        (
            "Sam forgot to run the migration",
            "Running the migration depended on someone remembering it: "
            "what in the process let it be skipped?",
        ),
        (
            "Sam and Mia forgot to check the logs.",
            "Checking the logs depended on someone remembering it: "
            "what in the process let it be skipped?",
        ),
        (
            "He forgot about the cron job",
            "The cron job depended on someone remembering it: "
            "what in the process let it be missed?",
        ),
        (
            "QA missed the null check in checkout",
            "The null check in checkout was not caught: "
            "which check could have caught it, and why did it not?",
        ),
        (
            "Fred didn't bother to update the runbook",
            "Updating the runbook was skipped: what made skipping it easy or invisible?",
        ),
        (
            "Mia should have known the flag was on",
            "Nothing showed that the flag was on: "
            "how could the process have made it visible in time?",
        ),
        (
            "It was human error",
            "It was a manual step: what in the process made this possible?",
        ),
        (
            "A sloppy review let it through",
            "A hurried review let it through: what in the process made this possible?",
        ),
    ],
)
def test_suggested_rewordings_are_about_the_process(text, suggestion):
    findings = blame_findings(text, MEMBERS)
    assert suggest_rewording(text, findings) == suggestion


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        (
            "Priya forgot to run the migration",
            "Running the migration depended on someone remembering it: "
            "what in the process let it be skipped?",
        ),
        (
            "Priya was careless with the config",
            "Someone was under pressure with the config: what in the process made this possible?",
        ),
        (
            "It was human error",
            "It was a manual step: what in the process made this possible?",
        ),
    ],
)
def test_a_person_the_team_does_not_know_is_left_out_of_the_suggestion_too(text, suggestion):
    assert suggest_rewording(text, blame_findings(text, MEMBERS)) == suggestion


@pytest.mark.parametrize(
    "text",
    [
        "Sam forgot to tell Mia about the cache",
        "The mock was lenient; Sam's review missed it",
        "It was Okafor's fault",
        "A mistake by Will in the config",
        "Sam was careless with the config, QA missed it, and it was human error",
        "Devs failed to write a contract test",
        "negligence in the deploy",
        "They couldn't be bothered to test on Safari",
    ],
)
def test_a_suggestion_never_points_at_anyone_itself(text):
    findings = blame_findings(text, MEMBERS)
    assert findings
    suggestion = suggest_rewording(text, findings)
    assert blame_findings(suggestion, MEMBERS) == [], suggestion
    assert suggestion.endswith("?")


@pytest.mark.parametrize(
    ("verb", "ing"),
    [
        ("run", "running"),
        ("stop", "stopping"),
        ("open", "opening"),
        ("make", "making"),
        ("tie", "tying"),
        ("see", "seeing"),
        ("check", "checking"),
        ("deploy", "deploying"),
    ],
)
def test_gerund(verb, ing):
    assert gerund(verb) == ing


# --- The board holds a blaming why back and offers the suggestion.


@pytest.fixture
def whys_retro(retro):
    return advance_to(retro, Phase.WHYS)


def post_why(client, retro, escape, **data):
    return client.post(url("retro_why_add", retro, escape_id=escape.pk), data, headers=HX)


def test_a_why_naming_a_member_is_held_back_with_a_suggestion(whys_retro, escape, member):
    response = post_why(
        client_for(member), whys_retro, escape, text="mia forgot to run the migration"
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert not Why.objects.exists(), "not posted yet"
    assert "Blameless check" in html
    assert "“mia” names a person" in html
    assert 'value="mia forgot to run the migration"' in html, "the text is kept"
    suggestion = (
        "Running the migration depended on someone remembering it: "
        "what in the process let it be skipped?"
    )
    assert f'name="use_suggestion" value="{suggestion}"' in html
    assert 'name="post_anyway" value="1"' in html


def test_use_suggestion_fills_the_field_and_posting_it_saves_it(whys_retro, escape, member):
    client = client_for(member)
    suggestion = "Running the migration depended on someone remembering it: what let it slip?"

    response = post_why(
        client,
        whys_retro,
        escape,
        text="mia forgot to run the migration",
        use_suggestion=suggestion,
    )

    html = response.content.decode()
    assert not Why.objects.exists(), "the author reads the suggestion before it is posted"
    assert f'value="{suggestion}"' in html
    assert "Blameless check" not in html

    post_why(client, whys_retro, escape, text=suggestion)
    assert list(Why.objects.values_list("text", "author")) == [(suggestion, member.pk)]


def test_post_anyway_saves_the_text_as_written(whys_retro, escape, member):
    post_why(
        client_for(member), whys_retro, escape, text="QA missed the null check", post_anyway="1"
    )
    assert list(Why.objects.values_list("text", flat=True)) == ["QA missed the null check"]


def test_a_blameless_why_is_posted_at_once(whys_retro, escape, member):
    response = post_why(client_for(member), whys_retro, escape, text="Staging has no latency")
    assert "Blameless check" not in response.content.decode()
    assert Why.objects.count() == 1


def test_a_deeper_why_is_checked_too_and_keeps_its_place(whys_retro, escape, member):
    parent = services.why_add(
        retro=whys_retro, escape=escape, text="Staging has no latency", author=member
    )
    response = post_why(
        client_for(member), whys_retro, escape, text="Ops was lazy", parent=parent.pk
    )
    html = response.content.decode()
    assert Why.objects.count() == 1
    assert "Blameless check" in html
    assert 'value="Ops was lazy"' in html
    # The held why is back in its own "dig deeper" form, opened, under its parent.
    form_start = html.index(f'name="parent" value="{parent.pk}"')
    assert form_start < html.index("Blameless check") < html.index("</form>", form_start)
    assert "<details open>" in html


def test_without_htmx_a_held_why_comes_back_on_the_whole_board(whys_retro, escape, member):
    client = client_for(member)
    response = client.post(
        url("retro_why_add", whys_retro, escape_id=escape.pk), {"text": "Sam was careless"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "<!doctype html>" in html
    assert "Blameless check" in html
    assert 'value="Sam was careless"' in html
    assert not Why.objects.exists()

    response = client.post(
        url("retro_why_add", whys_retro, escape_id=escape.pk),
        {"text": "Sam was careless", "post_anyway": "1"},
    )
    assert response.status_code == 302
    assert Why.objects.get().text == "Sam was careless"


def test_without_htmx_a_held_edit_comes_back_on_the_whole_board(whys_retro, escape, member):
    why = services.why_add(retro=whys_retro, escape=escape, text="Original", author=member)
    response = client_for(member).post(
        url("retro_why_edit", whys_retro, why_id=why.pk), {"text": "QA missed it", "revision": 1}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Blameless check" in html
    assert 'value="QA missed it"' in html
    assert Why.objects.get().text == "Original"


def test_an_edit_that_blames_is_held_back_on_the_revision_it_started_from(
    whys_retro, escape, member
):
    why = services.why_add(retro=whys_retro, escape=escape, text="Original", author=member)
    client = client_for(member)
    edit = url("retro_why_edit", whys_retro, why_id=why.pk)
    services.why_edit(why=why, text="Someone else's newer wording", expected_revision=1, by=member)

    response = client.post(edit, {"text": "fred dropped the ball", "revision": 1}, headers=HX)

    html = response.content.decode()
    assert "Blameless check" in html
    assert 'name="revision" value="1"' in html, "still the revision the author started from"
    assert Why.objects.get(pk=why.pk).text == "Someone else's newer wording"

    response = client.post(
        edit, {"text": "fred dropped the ball", "revision": 1, "post_anyway": "1"}, headers=HX
    )
    assert "It now reads: “Someone else&#x27;s newer wording”" in response.content.decode()
    assert Why.objects.get(pk=why.pk).text == "Someone else's newer wording"


def test_an_edit_posted_anyway_is_saved(whys_retro, escape, member):
    why = services.why_add(retro=whys_retro, escape=escape, text="Original", author=member)
    client_for(member).post(
        url("retro_why_edit", whys_retro, why_id=why.pk),
        {"text": "Human error in the deploy", "revision": 1, "post_anyway": "1"},
        headers=HX,
    )
    assert Why.objects.get(pk=why.pk).text == "Human error in the deploy"
