import pytest

from retros.markdown import md_escape


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain words", "plain words"),
        ("<img src=x onerror=alert(1)>", "\\<img src=x onerror=alert(1)>"),
        ("<https://evil.example>", "\\<https://evil.example>"),
        ("*not bold* and _not italic_", "\\*not bold\\* and \\_not italic\\_"),
        ("[a link](https://evil.example)", "\\[a link\\](https://evil.example)"),
        ("`code` | table ~strike~", "\\`code\\` \\| table \\~strike\\~"),
        ("&lt; stays literal, &#60; too", "\\&lt; stays literal, \\&#60; too"),
        ("two\nlines\n\n# mid-line", "two lines # mid-line"),
        ("back\\slash", "back\\\\slash"),
        ("__dunder__ and _x", "\\_\\_dunder\\_\\_ and \\_x"),
    ],
)
def test_user_text_reads_as_typed_in_markdown(text, expected):
    assert md_escape(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Release 2026.12.0 broke checkout",
        "2026.12.0",
        "v1.2.3 - 1.2.4",
        "retry_count and max_retry_delay_ms",
        "R&D asked: is 3 > 2?",
        "# 1. - + = > all mid-line",
        "C# and F#",
    ],
)
def test_what_markdown_would_not_read_as_markup_is_left_as_typed(text):
    assert md_escape(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# not a heading", "\\# not a heading"),
        ("###### nor this", "\\###### nor this"),
        ("#hashtag", "#hashtag"),  # a heading needs a space after its #s
        ("- not a list", "\\- not a list"),
        ("+ not a list", "\\+ not a list"),
        ("-5 % latency", "-5 % latency"),
        ("1. not a list", "1\\. not a list"),
        ("2) not a list", "2\\) not a list"),
        ("2026. A year to remember", "2026\\. A year to remember"),
        ("2026.12.0 broke checkout", "2026.12.0 broke checkout"),
        ("1234567890. too long to be a list number", "1234567890. too long to be a list number"),
        ("> not a quote", "\\> not a quote"),
        ("---", "\\---"),
        ("===", "\\==="),
        ("- - -", "\\- - -"),
        ("-- a dash", "-- a dash"),
    ],
)
def test_at_the_start_of_a_block_only_what_opens_one_is_escaped(text, expected):
    assert md_escape(text, starts_block=True) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026.12.0 broke checkout", "2026.12.0 broke checkout"),
        ("Retry #", "Retry \\#"),
        ("Retry ##", "Retry \\##"),
        ("#", "\\#"),
        ("Ticket #12 and C#", "Ticket #12 and C#"),
    ],
)
def test_a_heading_keeps_its_trailing_hashes(text, expected):
    assert md_escape(text, in_heading=True) == expected
