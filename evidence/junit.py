"""Reading JUnit XML as CI tools write it, safely.

No DTD is read, so no entity either: no external entity (XXE), no "billion laughs". `check`
runs in the upload's request: it streams the file through expat with the same refusals
defusedxml installs (a DTD, an entity declaration or an external entity reference stops it),
builds no tree, and answers a malformed file with its line and the reason. `cases` runs in the
worker: it parses with defusedxml and reads each <testcase> through junitparser; `run_results`
folds the cases into one result per test (docs/metrics.md, "Test evidence").

The dialects read, each with a sample in tests/evidence/samples/:

- pytest (junit_family xunit2): no file attribute. pytest-rerunfailures writes one
  <testcase> per attempt, the failed ones empty (their failure is lost): in a pytest suite,
  every record of a test but its last is a failed attempt.
- Maven Surefire and Failsafe, and Gradle with `mergeReruns`: the failed attempts of a test
  are inside its <testcase>: <flakyFailure>/<flakyError> in one that passed in the end,
  <rerunFailure>/<rerunError> after the <failure> of one that never passed.
- Gradle's test-retry plugin and `go test -count`: the same test written again.
- Jest via jest-junit: the file, when written, is on the <testcase> (addFileAttribute).
- go-junit-report v2: `message="Failed"` on every failure; the reason is in the text. A
  package that does not build is a "[build failed]" case with an <error>.
- Playwright: one <testsuite> per project and file, named by the file, with the project in
  `hostname`. The file is the suite's name; the project is put before the test's name
  ("[chromium] cart › adds an item", as Playwright's includeProjectInTestName writes it), so
  the same test in two browsers is two tests, not a retry. With includeRetries, retries are
  Surefire's flaky*/rerun* elements; without it a retry leaves no trace.
- .NET via JunitXml.TestLogger.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.etree.ElementTree import Element, ParseError
from xml.parsers import expat

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from junitparser import Error, Failure, Skipped, TestCase

GZIP_MAGIC = b"\x1f\x8b"
MESSAGE_MAX = 300
NAME_MAX = 500
# Surefire and Failsafe (rerunFailingTestsCount) write the failed attempts of a test inside
# its <testcase>: flaky* on a test that passed in the end, rerun* on one that never passed.
FLAKY_TAGS = {"flakyFailure", "flakyError"}
RERUN_TAGS = {"rerunFailure", "rerunError"}
# Messages that say nothing: go-junit-report writes message="Failed" on every failure,
# "Build error" and "Runtime error" (a panic) with the reason in the text.
PLACEHOLDER_MESSAGES = {"failed", "skipped", "failure", "error", "build error", "runtime error"}
# Playwright names a suite by its test file (JavaScript or TypeScript).
SCRIPT_SUFFIXES = (".ts", ".tsx", ".mts", ".cts", ".js", ".jsx", ".mjs", ".cjs")
# A suite timestamp before this is a default (.NET's 0001-01-01, the epoch), not a run.
EARLIEST_RUN = datetime(2000, 1, 1, tzinfo=UTC)


class JUnitError(ValueError):
    """A file that is not JUnit XML we can read: the reason, and the line when there is one."""

    def __init__(self, reason: str, *, line: int | None = None, file: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line
        self.file = file

    def __str__(self) -> str:
        where = ", ".join(
            part for part in (self.file, f"line {self.line}" if self.line else "") if part
        )
        return f"{where}: {self.reason}" if where else self.reason


class TooLarge(ValueError):
    """Over a bound of one upload (bytes unzipped, or test cases)."""


@dataclass(frozen=True)
class CaseResult:
    """One <testcase> element."""

    classname: str
    name: str
    file: str
    outcome: str  # "passed", "failed" or "skipped" (evidence.models.Outcome)
    # The failure's or the skip's message, one line, bounded; on a case that passed after
    # Surefire-style flaky attempts, the last flaky failure's message.
    message: str
    failed_attempts: int  # attempts that failed before this one (Surefire's flaky*/rerun*)


@dataclass(frozen=True)
class RunResult:
    """A test's result in one pipeline run: its cases folded (docs/metrics.md)."""

    classname: str
    name: str
    file: str
    outcome: str  # passed if any attempt passed, else failed if any failed, else skipped
    retried: bool  # an attempt failed and a later one passed
    # The message of the last attempt with the run's outcome; for a retried run, the
    # message of its last failed attempt (why it had to be retried), when the file has it.
    message: str
    attempts: int


@dataclass(frozen=True)
class Checked:
    cases: int
    ran_at: datetime | None  # the earliest suite timestamp, if the file gives one


def unpack(data: bytes, *, limit: int, name: str = "") -> bytes:
    """The file's XML: gunzipped if it is gzip, never more than `limit` bytes.

    A gzip file is inflated at most `limit` + 1 bytes, so a small file that would inflate to
    gigabytes (a "gzip bomb") is refused as TooLarge having used about `limit` of memory.
    Several gzip members one after the other (`cat a.gz b.gz`) are read as one file.
    """
    label = name or "A file"
    if not data.startswith(GZIP_MAGIC):
        if len(data) > limit:
            raise TooLarge(f"{label} is over {_size(limit)}.")
        return data
    parts: list[bytes] = []
    size = 0
    rest = data
    while True:
        out = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            part = out.decompress(rest, limit + 1 - size)
        except zlib.error as exc:
            raise JUnitError(f"not a readable gzip file ({exc})", file=name) from exc
        size += len(part)
        parts.append(part)
        if size > limit or out.unconsumed_tail:
            raise TooLarge(f"{label} is over {_size(limit)} once unzipped.")
        if not out.eof:
            raise JUnitError("the gzip file is cut short", file=name)
        rest = out.unused_data
        if not rest.startswith(GZIP_MAGIC):
            break  # trailing zero padding, as some tools write, is ignored like gzip does
    return b"".join(parts)


def gzipped(xml: bytes) -> bytes:
    """How the worker's copy is stored until it is read (a quick level: it is deleted soon)."""
    return gzip.compress(xml, compresslevel=1, mtime=0)


def parse(xml: bytes, *, name: str = "") -> Element:
    """The root <testsuites> or <testsuite>; JUnitError with the line for anything else."""
    try:
        root = fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except ParseError as exc:
        line, _column = exc.position
        raise JUnitError(_not_xml(str(exc).split(":")[0]), line=line, file=name) from exc
    except DefusedXmlException as exc:
        raise JUnitError(_NO_DTD, line=_line_of(xml, b"<!DOCTYPE"), file=name) from exc
    if root.tag not in ("testsuites", "testsuite"):
        raise JUnitError(
            _wrong_root(root.tag), line=_line_of(xml, b"<" + root.tag.encode()), file=name
        )
    return root


def check(xml: bytes, *, name: str = "", max_cases: int) -> Checked:
    """Refuse what the worker could not read, in the request; count the cases.

    A stream through expat that builds no tree: 50 to 75 ms for 20,000 cases (1.6 MB).
    JUnitError, with the line: a DTD (so any entity), XML that is not well-formed, a root
    other than <testsuites> or <testsuite>, a <testcase> without a name. TooLarge: over
    `max_cases` test cases (it stops counting there).

    `ran_at` is the earliest suite `timestamp`. Surefire writes none; Gradle, jest-junit and
    JunitXml.TestLogger write local or UTC times without a zone: a time without a zone is
    taken as UTC.
    """
    reader = _Checker(name=name, max_cases=max_cases)
    parser = expat.ParserCreate()
    parser.StartElementHandler = reader.start
    parser.StartDoctypeDeclHandler = reader.doctype
    parser.EntityDeclHandler = reader.entity
    parser.UnparsedEntityDeclHandler = reader.entity
    parser.ExternalEntityRefHandler = reader.external
    reader.parser = parser
    try:
        parser.Parse(xml, True)
    except expat.ExpatError as exc:
        reason = expat.errors.messages[exc.code]
        raise JUnitError(_not_xml(reason), line=exc.lineno, file=name) from exc
    return Checked(cases=reader.cases, ran_at=reader.earliest)


def cases(xml: bytes, *, name: str = "") -> Iterator[CaseResult]:
    """Every <testcase> of the file, suite by suite, in document order.

    Suites nested in suites are read, and a <testcase> outside any suite too.
    """
    root = parse(xml, name=name)
    root_name = root.get("name", "") if root.tag == "testsuites" else ""
    for suite, elements in _suites(root):
        yield from _suite_cases(suite, elements, root_name=root_name, file=name)


def run_results(case_results: Iterable[CaseResult]) -> list[RunResult]:
    """One result per test (classname, name): a test written several times is retried."""
    grouped: dict[tuple[str, str], list[CaseResult]] = {}
    for case in case_results:
        grouped.setdefault((case.classname, case.name), []).append(case)
    results = []
    for (classname, name), attempts in grouped.items():
        outcomes = [a.outcome for a in attempts]
        retried = False
        seen_failure = False
        failure_message = ""
        for attempt in attempts:
            if attempt.failed_attempts:
                seen_failure = True
                if attempt.outcome == "passed":
                    failure_message = attempt.message or failure_message
            if attempt.outcome == "failed":
                seen_failure = True
                failure_message = attempt.message or failure_message
            elif attempt.outcome == "passed" and seen_failure:
                retried = True
        if "passed" in outcomes:
            outcome = "passed"
        elif "failed" in outcomes:
            outcome = "failed"
        else:
            outcome = "skipped"
        last = next(a for a in reversed(attempts) if a.outcome == outcome)
        message = failure_message if retried else last.message
        if outcome == "passed" and not retried:
            message = ""
        results.append(
            RunResult(
                classname=classname,
                name=name,
                file=last.file or next((a.file for a in attempts if a.file), ""),
                outcome=outcome,
                retried=retried,
                message=message,
                attempts=len(attempts) + sum(a.failed_attempts for a in attempts),
            )
        )
    return results


_NO_DTD = "a DTD or entity declaration; JUnit XML has none and we do not read them"


class _Checker:
    """expat handlers for `check`: count, refuse, and note the earliest timestamp."""

    parser: Any

    def __init__(self, *, name: str, max_cases: int) -> None:
        self.name = name
        self.max_cases = max_cases
        self.cases = 0
        self.root_seen = False
        self.earliest: datetime | None = None

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        if not self.root_seen:
            self.root_seen = True
            if tag not in ("testsuites", "testsuite"):
                raise JUnitError(
                    _wrong_root(tag), line=self.parser.CurrentLineNumber, file=self.name
                )
        if tag == "testcase":
            self.cases += 1
            if not attrs.get("name"):
                raise JUnitError(
                    "a <testcase> without a name attribute",
                    line=self.parser.CurrentLineNumber,
                    file=self.name,
                )
            if self.cases > self.max_cases:
                where = f"{self.name}: " if self.name else ""
                raise TooLarge(
                    f"{where}more than {self.max_cases:,} test cases in one upload; "
                    f"the limit is {self.max_cases:,}."
                )
        elif tag == "testsuite":
            stamp = _timestamp(attrs.get("timestamp"))
            if stamp and (self.earliest is None or stamp < self.earliest):
                self.earliest = stamp

    def doctype(self, *_args: object) -> None:
        raise JUnitError(_NO_DTD, line=self.parser.CurrentLineNumber, file=self.name)

    def entity(self, *_args: object) -> None:
        raise JUnitError(_NO_DTD, line=self.parser.CurrentLineNumber, file=self.name)

    def external(self, *_args: object) -> int:
        raise JUnitError(_NO_DTD, line=self.parser.CurrentLineNumber, file=self.name)


def _suites(root: Element) -> Iterator[tuple[Element | None, list[Element]]]:
    """Each suite with its own <testcase> children, nested suites included, in order."""
    stack: list[tuple[Element | None, Element]] = [
        (root if root.tag == "testsuite" else None, root)
    ]
    while stack:
        suite, element = stack.pop()
        own = [child for child in element if child.tag == "testcase"]
        if own:
            yield suite, own
        nested = [child for child in element if child.tag in ("testsuite", "testsuites")]
        for child in reversed(nested):
            stack.append((child if child.tag == "testsuite" else suite, child))


def _suite_cases(
    suite: Element | None, elements: list[Element], *, root_name: str, file: str
) -> Iterator[CaseResult]:
    suite_name = suite.get("name", "") if suite is not None else ""
    pytest_suite = suite is not None and _is_pytest(suite, root_name)
    read = [_case(element, suite_name, file=file) for element in elements]
    if pytest_suite:
        # pytest-rerunfailures: every record of a test but its last is a failed attempt.
        last: dict[tuple[str, str], int] = {}
        for index, case in enumerate(read):
            last[(case.classname, case.name)] = index
        read = [
            case if last[(case.classname, case.name)] == index else _replace(case, outcome="failed")
            for index, case in enumerate(read)
        ]
    if suite is not None and _is_playwright(suite, read):
        project = suite.get("hostname", "")
        read = [
            _replace(
                case,
                file=case.file or suite_name[:NAME_MAX],
                name=case.name
                if not project or case.name.startswith(f"[{project}] ")
                else f"[{project}] {case.name}"[:NAME_MAX],
            )
            for case in read
        ]
    yield from read


def _case(element: Element, suite_name: str, *, file: str) -> CaseResult:
    case = TestCase.fromelem(element)
    if not case.name:
        raise JUnitError("a <testcase> without a name attribute", file=file)
    outcome, message = "passed", ""
    for result in case.result:
        if isinstance(result, Failure | Error):
            outcome, message = "failed", _message(result.message, result.text)
            break
        if isinstance(result, Skipped) and outcome == "passed":
            outcome, message = "skipped", _message(result.message, result.text)
    if outcome == "skipped" and not message:
        # Playwright writes test.skip(true, "why") as a "skip" (or "fixme") property.
        message = _message(_property(element, "skip") or _property(element, "fixme"), None)
    failed_attempts = 0
    for child in element:
        if child.tag in FLAKY_TAGS or child.tag in RERUN_TAGS:
            failed_attempts += 1
            if child.tag in FLAKY_TAGS and outcome == "passed":
                trace = child.find("stackTrace")
                message = _message(
                    child.get("message"), trace.text if trace is not None else child.text
                )
    return CaseResult(
        classname=(case.classname or suite_name or "")[:NAME_MAX],
        name=case.name[:NAME_MAX],
        file=(element.get("file") or "")[:NAME_MAX],
        outcome=outcome,
        message=message,
        failed_attempts=failed_attempts,
    )


def _message(attribute: str | None, text: str | None) -> str:
    """The message attribute, else the first line of the text; one line, bounded."""
    message = " ".join((attribute or "").split())
    if not message or message.lower() in PLACEHOLDER_MESSAGES:
        first = next((line for line in (text or "").splitlines() if line.strip()), "")
        message = " ".join(first.split())
    return message[:MESSAGE_MAX]


def _property(element: Element, name: str) -> str:
    for prop in element.iterfind("properties/property"):
        if prop.get("name") == name:
            return prop.get("value") or prop.text or ""
    return ""


def _is_pytest(suite: Element, root_name: str) -> bool:
    """pytest names its suite "pytest" (junit_suite_name) and its root "pytest tests"."""
    if root_name == "pytest tests" or suite.get("name") == "pytest":
        return True
    return any(
        (skipped.get("type") or "").startswith("pytest.") for skipped in suite.iter("skipped")
    )


def _is_playwright(suite: Element, read: list[CaseResult]) -> bool:
    """Playwright names a suite and its cases' classname by the test file, and no file."""
    name = suite.get("name", "")
    return (
        name.endswith(SCRIPT_SUFFIXES)
        and " " not in name
        and all(case.classname == name and not case.file for case in read)
    )


def _replace(case: CaseResult, **changes: Any) -> CaseResult:
    fields = {**case.__dict__, **changes}
    return CaseResult(**fields)


def _timestamp(value: str | None) -> datetime | None:
    """A suite's timestamp, in UTC; one written without a zone is taken as UTC."""
    if not value:
        return None
    try:
        stamp = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    stamp = stamp.astimezone(UTC) if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    return stamp if stamp >= EARLIEST_RUN else None


def _line_of(xml: bytes, needle: bytes) -> int | None:
    at = xml.find(needle)
    return xml.count(b"\n", 0, at) + 1 if at >= 0 else None


def _not_xml(reason: str) -> str:
    """expat's reason, without its own "not well-formed (...)" around it."""
    if reason.startswith("not well-formed (") and reason.endswith(")"):
        reason = reason[len("not well-formed (") : -1]
    return f"not well-formed XML ({reason})"


def _wrong_root(tag: str) -> str:
    return f"the root element is <{tag}>, not <testsuites> or <testsuite>"


def _size(limit: int) -> str:
    megabyte = 1024 * 1024
    return f"{limit // megabyte} MB" if limit % megabyte == 0 else f"{limit:,} bytes"
