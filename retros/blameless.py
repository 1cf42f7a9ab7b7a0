"""Blameless wording: spot a why that points at a person and suggest a system-focused one.

A retro asks what in the process let a defect through; "Sam forgot" ends that question
before it starts. `blame_findings` finds team members' names and the usual blame phrases
(case-insensitive, whole words only, so "forgot-password flow" or "lazy loading" pass);
`suggest_rewording` offers a version about the process. Nothing here refuses anything: the
board shows the suggestion and the author may post anyway.
"""

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# Whole words: a hyphen or an apostrophe-free letter run around the match means it is part
# of another word ("forgot-password", "Samuel"); a possessive "'s" after a name still counts.
_B = r"(?<![\w-])"
_E = r"(?![\w-])"

PERSON = "person"
ROLE = "role"
PHRASE = "phrase"

# Names that are also ordinary words ("Will", "Mark") or the usernames of role accounts
# ("admin", "engineer") count only written with a capital letter, and not as the first word
# of a sentence ("Will the build fail?", "Admin pages have no test").
AMBIGUOUS_NAMES = frozenset(
    [
        "will",
        "may",
        "mark",
        "bill",
        "grant",
        "chase",
        "drew",
        "rob",
        "sue",
        "pat",
        "jack",
        "frank",
        "hope",
        "joy",
        "faith",
        "june",
        "april",
        "august",
        "dawn",
        "rose",
        "ray",
        "gene",
        "max",
        "bob",
        "art",
        "sky",
        "summer",
        "autumn",
        "amber",
        "crystal",
        "lane",
        "dean",
        "hunter",
        "miles",
        "rich",
        "guy",
        "page",
        "admin",
        "administrator",
        "manager",
        "engineer",
        "facilitator",
        "developer",
        "tester",
        "user",
        "owner",
        "member",
        "viewer",
        "guest",
        "demo",
        "test",
        "build",
        "release",
        "deploy",
        "staging",
        "prod",
        "ci",
        "bot",
        "root",
        "service",
        "system",
        "support",
        "team",
        "lead",
        "dev",
        "ops",
        "qa",
    ]
)
NAME_MIN_LENGTH = 2

ROLES = r"(?:the\s+)?(?:qa|testers?|devs?|developers?|ops|on-call|reviewers?)(?:\s+team)?"
_ROLE_BLAME = re.compile(
    rf"{_B}{ROLES}\s+(?:missed|overlooked|failed\s+to|didn't|didn’t|did\s+not|"
    rf"should\s+have|should've|should’ve){_E}",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Phrase:
    pattern: re.Pattern[str]
    reason: str


def _phrase(regex: str, reason: str) -> _Phrase:
    return _Phrase(re.compile(_B + regex + _E, re.IGNORECASE), reason)


BLAME_PHRASES: tuple[_Phrase, ...] = (
    _phrase(r"(?:forgot|forgets|forgetting)(?!\s*password)", "makes it a matter of memory"),
    _phrase(r"careless(?:ly|ness)?", "judges a person"),
    _phrase(
        r"(?:lazy|lazily|laziness)(?!\s+(?:load|loaded|loading|evaluation|init))", "judges a person"
    ),
    _phrase(r"sloppy|sloppily|sloppiness", "judges a person"),
    _phrase(r"negligen(?:t|tly|ce)", "judges a person"),
    _phrase(r"incompeten(?:t|ce)", "judges a person"),
    _phrase(
        r"(?:did(?:n't|n’t|\s+not)\s+bother|could(?:n't|n’t|\s+not)\s+be\s+bothered)",
        "judges a person",
    ),
    _phrase(r"should(?:\s+have|'ve|’ve)\s+known(?:\s+better)?", "judges with hindsight"),
    _phrase(r"human\s+error", "stops at the person instead of the step"),
    _phrase(
        r"(?:(?:his|her|their|my|your|our|\w+'s|\w+’s)\s+fault|the\s+fault\s+of)"
        r"(?!\s+(?:tolerance|tolerant|injection|domain|isolation))",
        "assigns fault",
    ),
    _phrase(r"mistakes?\s+(?:by|of|from)", "assigns the mistake to a person"),
    _phrase(r"dropped\s+the\s+ball", "judges a person"),
    _phrase(
        r"(?:(?:was|were|is|are)(?:n't|n’t|\s+not)|not)\s+paying\s+attention", "judges a person"
    ),
    _phrase(r"(?:to\s+blame|blamed?|blames|blaming)", "assigns blame"),
)


@dataclass(frozen=True)
class Finding:
    """One stretch of a text that points at a person rather than at the process."""

    kind: str  # PERSON, ROLE or PHRASE
    start: int
    end: int
    text: str
    reason: str

    @property
    def message(self) -> str:
        return f"“{self.text}” {self.reason}"


def _clean_names(member_names: Iterable[str]) -> list[str]:
    names = {name.strip() for name in member_names if len(name.strip()) >= NAME_MIN_LENGTH}
    # Longest first, so "Sam Smith"-style overlaps match the longer name.
    return sorted(names, key=lambda n: (-len(n), n.lower()))


def _name_pattern(names: list[str]) -> re.Pattern[str] | None:
    """A pattern of the names as whole words; ambiguous ones only capitalised."""
    alternatives: list[str] = []
    for name in names:
        if name.lower() in AMBIGUOUS_NAMES:
            alternatives.append(rf"(?-i:{re.escape(name.lower().capitalize())})")
        else:
            alternatives.append(re.escape(name))
    if not alternatives:
        return None
    return re.compile(_B + "(?:" + "|".join(alternatives) + ")" + _E, re.IGNORECASE)


def _starts_sentence(text: str, start: int) -> bool:
    before = text[:start].rstrip()
    return not before or before[-1] in ".!?:;"


def blame_findings(text: str, member_names: Iterable[str]) -> list[Finding]:
    """Where `text` points at a person: a member's name, a role blamed, a blame phrase.

    `member_names` are the team's usernames, first and last names. Findings come in the
    order they appear in the text.
    """
    findings: list[Finding] = []
    names = _name_pattern(_clean_names(member_names))
    if names is not None:
        findings.extend(
            Finding(PERSON, m.start(), m.end(), m.group(), "names a person")
            for m in names.finditer(text)
            if not (m.group().lower() in AMBIGUOUS_NAMES and _starts_sentence(text, m.start()))
        )
    findings.extend(
        Finding(ROLE, m.start(), m.end(), m.group(), "points at a role, not at the process")
        for m in _ROLE_BLAME.finditer(text)
    )
    for phrase in BLAME_PHRASES:
        findings.extend(
            Finding(PHRASE, m.start(), m.end(), m.group(), phrase.reason)
            for m in phrase.pattern.finditer(text)
        )
    return sorted(findings, key=lambda f: (f.start, -f.end))


# --- Rewording.

_PRONOUNS = r"(?:he|she|they|we|i|someone|somebody|you)"
_END = r"\s*[.!]*\s*$"


def _actor_pattern(names: list[str]) -> str:
    """One actor or several ("Sam and Mia", "QA, ops and the on-call")."""
    parts = [ROLES, _PRONOUNS, *(re.escape(n) for n in names)]
    one = "(?:" + "|".join(parts) + ")"
    return rf"{one}(?:\s*(?:,|\band\b|&)\s*{one})*"


def _structured(actor: str) -> list[tuple[re.Pattern[str], str]]:
    """(pattern, template) of the common shapes; `act` and `thing` are the captured parts."""

    def shape(regex: str) -> re.Pattern[str]:
        return re.compile(rf"^\s*{actor}\s+{regex}{_END}", re.IGNORECASE)

    return [
        (
            shape(r"(?:forgot|forgets)\s+to\s+(?P<act>.+?)"),
            "{Act} depended on someone remembering it: what in the process let it be skipped?",
        ),
        (
            shape(r"(?:forgot|forgets)\s+(?:about\s+)?(?P<thing>.+?)"),
            "{Thing} depended on someone remembering it: what in the process let it be missed?",
        ),
        (
            shape(r"(?:missed|overlooked|should(?:\s+have|'ve|’ve)\s+caught)\s+(?P<thing>.+?)"),
            "{Thing} was not caught: which check could have caught it, and why did it not?",
        ),
        (
            shape(
                r"should(?:\s+have|'ve|’ve)\s+(?:known|seen|noticed)\s+(?:that\s+)?(?P<clause>.+?)"
            ),
            "Nothing showed that {clause}: how could the process have made it visible in time?",
        ),
        (
            shape(
                r"(?:(?:did(?:n't|n’t|\s+not)|could(?:n't|n’t|\s+not))\s+(?:be\s+)?bother(?:ed)?\s+to"
                r"|did(?:n't|n’t|\s+not)|failed\s+to)\s+(?P<act>.+?)"
            ),
            "{Act} was skipped: what made skipping it easy or invisible?",
        ),
    ]


def _keep_verb(match: re.Match[str]) -> str:
    """ "Sam was careless" -> "Sam was under pressure"."""
    return match.group().split()[0] + " under pressure"


_NEUTRAL: tuple[tuple[str, str | Callable[[re.Match[str]], str]], ...] = (
    (r"(?:an?\s+)?mistakes?\s+(?:by|of|from)\s+{actor}", "a step that went wrong"),
    (r"the\s+fault\s+of\s+{actor}", "a gap in the process"),
    (r"(?:his|her|their|my|your|our|\w+'s|\w+’s)\s+fault", "a gap in the process"),
    (rf"{ROLES}\s+(?:missed|overlooked)", "the checks missed"),
    (rf"{ROLES}\s+(?:failed\s+to|didn't|didn’t|did\s+not)", "the process did not"),
    (rf"{ROLES}\s+(?:should\s+have|should've|should’ve)", "the process could have"),
    (r"(?:forgot|forgets)\s+to", "did not"),
    (r"forgetting\s+to", "not"),
    (r"forgot|forgets|forgetting", "missed"),
    (
        r"(?:did(?:n't|n’t|\s+not)\s+bother|could(?:n't|n’t|\s+not)\s+be\s+bothered)\s+to",
        "did not",
    ),
    (r"(?:did(?:n't|n’t|\s+not)\s+bother|could(?:n't|n’t|\s+not)\s+be\s+bothered)", "skipped it"),
    (r"should(?:\s+have|'ve|’ve)\s+known(?:\s+better)?", "had no way to know"),
    (r"human\s+error", "a manual step"),
    (r"dropped\s+the\s+ball", "was left without a safety net"),
    (r"(?:(?:was|were|is|are)(?:n't|n’t|\s+not)|not)\s+paying\s+attention", "had no clear signal"),
    (r"(?:is|was|are|were)\s+to\s+blame", "was involved"),
    (r"blamed?|blames|blaming", "pointed at"),
    (
        r"(?:was|were|is|are|been|being)\s+(?:careless|lazy|sloppy|negligent|incompetent)",
        _keep_verb,
    ),
    (r"carelessness|laziness|sloppiness|negligence|incompetence", "time pressure"),
    (r"carelessly|lazily|sloppily|negligently", ""),
    (r"careless|lazy|sloppy|negligent|incompetent", "hurried"),
)


def _neutralize(text: str, names: list[str]) -> str:
    actor = _actor_pattern(names)
    for regex, replacement in _NEUTRAL:
        pattern = re.compile(_B + regex.replace("{actor}", actor) + _E, re.IGNORECASE)
        text = pattern.sub(replacement, text)
    name_pattern = _name_pattern(names)
    if name_pattern is not None:
        text = name_pattern.sub("someone", text)
    text = re.sub(r"^(?:his|her|their)\s+", "the ", text.strip(), flags=re.IGNORECASE)
    return re.sub(r"\s{2,}", " ", text).strip()


_VOWELS = "aeiou"


def gerund(verb: str) -> str:
    """The -ing form of an English verb, good enough for the verbs of a retro."""
    word = verb.lower()
    if word.endswith("ie"):
        return verb[:-2] + "ying"
    if word.endswith("e") and not word.endswith(("ee", "ye", "oe")) and len(word) > 2:
        return verb[:-1] + "ing"
    vowel_groups = re.findall(r"[aeiou]+", word)
    short_cvc = (
        len(vowel_groups) == 1
        and len(word) >= 3
        and word[-1] not in _VOWELS + "wxy"
        and word[-2] in _VOWELS
        and word[-3] not in _VOWELS
    )
    return verb + verb[-1] + "ing" if short_cvc else verb + "ing"


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def _fill(template: str, groups: dict[str, str], names: list[str]) -> str:
    values: dict[str, str] = {}
    for key, raw in groups.items():
        part = _neutralize(raw, names)
        if key == "act":
            first, _, rest = part.partition(" ")
            part = (gerund(first) + " " + rest).strip()
        values[key] = part
        values[key.capitalize()] = _capitalize(part)
    return template.format(**values)


# Capitalised words that stand before a verb without being anybody's name.
_NOT_NAMES = frozenset(
    [
        "a",
        "an",
        "the",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "we",
        "they",
        "he",
        "she",
        "i",
        "you",
        "our",
        "their",
        "his",
        "her",
        "my",
        "your",
        "nobody",
        "somebody",
        "someone",
        "everyone",
        "everybody",
        "who",
        "qa",
        "ops",
        "dev",
        "devs",
        "then",
        "so",
        "and",
        "but",
        "because",
        "when",
        "after",
        "before",
    ]
)
_BEFORE_BLAME = re.compile(
    r"(?-i:\b([A-Z][\w'’-]*))\s+(?:(?:was|were|is|has\s+been|had\s+been)\s+)?$"
)


def _guessed_names(text: str, findings: list[Finding]) -> list[str]:
    """Capitalised words right before a blame phrase: a person the team does not know of
    ("Sam" in "Sam forgot", "Sam was careless" when no member is called Sam)."""
    guesses: list[str] = []
    for finding in findings:
        if finding.kind != PHRASE:
            continue
        match = _BEFORE_BLAME.search(text[: finding.start])
        if match and match.group(1).lower() not in _NOT_NAMES:
            guesses.append(match.group(1).removesuffix("'s").removesuffix("’s"))
    return guesses


def suggest_rewording(text: str, findings: Iterable[Finding]) -> str:
    """A system-focused version of `text`, using the people that `findings` named.

    "Sam forgot to run the migration" becomes "Running the migration depended on someone
    remembering it: what in the process let it be skipped?". Shapes not recognised are
    neutralised word by word and turned towards the process.
    """
    findings = list(findings)
    names = _clean_names(
        [f.text for f in findings if f.kind == PERSON] + _guessed_names(text, findings)
    )
    for pattern, template in _structured(_actor_pattern(names)):
        match = pattern.match(text)
        if match:
            suggestion = _fill(template, match.groupdict(), names)
            if not blame_findings(suggestion, names):
                return suggestion
    neutral = _neutralize(text, names).rstrip(" .!?;:")
    if not neutral:
        return "What in the process made this possible?"
    return _capitalize(neutral) + ": what in the process made this possible?"


# --- The check a why goes through before it is posted.


@dataclass(frozen=True)
class BlamelessReview:
    """A why held back because it points at a person, with a system-focused suggestion."""

    text: str
    findings: list[Finding]
    suggestion: str


def review(text: str, member_names: Iterable[str]) -> BlamelessReview | None:
    """What to show the author before `text` is posted, or None when it reads blameless."""
    names = list(member_names)
    findings = blame_findings(text, names)
    if not findings:
        return None
    return BlamelessReview(
        text=text, findings=findings, suggestion=suggest_rewording(text, findings)
    )
