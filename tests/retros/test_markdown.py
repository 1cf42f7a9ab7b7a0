import pytest

from retros.markdown import md_escape


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain words", "plain words"),
        ("<img src=x onerror=alert(1)>", "\\<img src=x onerror=alert(1)\\>"),
        ("*not bold* and _not italic_", "\\*not bold\\* and \\_not italic\\_"),
        ("[a link](https://evil.example)", "\\[a link\\](https://evil.example)"),
        ("`code` | table ~strike~", "\\`code\\` \\| table \\~strike\\~"),
        ("&lt; stays literal", "\\&lt; stays literal"),
        ("# not a heading", "\\# not a heading"),
        ("- not a list", "\\- not a list"),
        ("1. not a list", "1\\. not a list"),
        ("> not a quote", "\\> not a quote"),
        ("two\nlines\n\n# mid-line", "two lines # mid-line"),
        ("back\\slash", "back\\\\slash"),
    ],
)
def test_user_text_reads_as_typed_in_markdown(text, expected):
    assert md_escape(text) == expected
