"""The JUnit reader (evidence/junit.py): each CI tool's dialect, read test by test, and safely.

The samples in tests/evidence/samples/ are small files shaped like each tool's own output
(README.md there says which tool and version). Each is pinned here test by test: outcome,
retried, attempts, file and message, as `run_results` folds them (docs/metrics.md, "Test
evidence"). The safety tests feed what an attacker or a broken CI step would send.
"""

import gzip
import time
import tracemalloc
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from evidence import junit
from evidence.junit import CaseResult, JUnitError, RunResult, TooLarge

SAMPLES = Path(__file__).resolve().parent / "samples"
LIMIT = 10 * 1024 * 1024


def results(sample: str) -> dict[str, RunResult]:
    xml = (SAMPLES / sample).read_bytes()
    junit.check(xml, name=sample, max_cases=20_000)
    return {r.name: r for r in junit.run_results(junit.cases(xml, name=sample))}


def run(
    outcome: str, *, retried: bool = False, attempts: int = 1, file: str = "", message: str = ""
) -> tuple[str, bool, int, str, str]:
    return (outcome, retried, attempts, file, message)


EXPECTED: dict[str, dict[str, tuple[str, bool, int, str, str]]] = {
    "pytest.xml": {
        "test_adds_item": run("passed"),
        "test_total": run("failed", message="assert (1 + 1) == 3"),
        "test_checkout": run(
            "failed", message='failed on setup with "ConnectionError: database is down"'
        ),
        "test_refund": run("skipped", message="payment sandbox is down"),
        # pytest-rerunfailures: the first record is the failed attempt, written empty.
        "test_flaky_stock": run("passed", retried=True, attempts=2),
        "test_always_red": run(
            "failed", attempts=2, message="AssertionError: coupon expired assert False"
        ),
    },
    "surefire.xml": {
        "addsItem": run("passed"),
        "appliesCoupon": run(
            "passed", retried=True, attempts=2, message="expected: <90> but was: <100>"
        ),
        "removesItem": run("failed", attempts=3, message="expected: <0> but was: <1>"),
        "exportsCsv": run("skipped", message="CSV export is behind a feature flag (SHOP-412)"),
    },
    "failsafe.xml": {
        # A flakyError then a flakyFailure without a message (its stack trace's first line).
        "paysWithCard": run(
            "passed",
            retried=True,
            attempts=3,
            message="java.lang.AssertionError: order status was PENDING",
        ),
        "refunds": run("failed", attempts=2, message="Read timed out"),
        "sendsReceipt": run("passed"),
    },
    "gradle.xml": {
        "reservesStock()": run("passed"),
        "releasesStock()": run(
            "passed",
            retried=True,
            attempts=2,
            message="org.opentest4j.AssertionFailedError: expected: <5> but was: <4>",
        ),
        "syncsWarehouse()": run(
            "failed", attempts=2, message="java.lang.IllegalStateException: warehouse offline"
        ),
        "countsBackorders()": run("skipped"),
    },
    "jest.xml": {
        "Cart adds an item": run("passed", file="src/cart/cart.test.ts"),
        "Cart totals › with coupon applies the discount": run(
            "failed",
            file="src/cart/cart.test.ts",
            message="Error: expect(received).toBe(expected) // Object.is equality",
        ),
        "Cart exports to CSV": run("skipped", file="src/cart/cart.test.ts"),
        "Search finds by sku": run("passed", file="src/search/search.test.ts"),
        "Search ignores case": run("passed", file="src/search/search.test.ts"),
    },
    "go.xml": {
        "TestAdd": run("passed", attempts=2),
        # The parent of a failed subtest: message="Failed" and no text says nothing.
        "TestTotal": run("passed", retried=True, attempts=2),
        "TestTotal/with_coupon": run(
            "passed", retried=True, attempts=2, message="cart_test.go:41: total = 100, want 90"
        ),
        "TestSkipDB": run("skipped", attempts=2, message="cart_test.go:52: needs a database"),
        "TestIndex": run("passed"),
        "TestSkipNow": run("skipped"),
        "[build failed]": run("failed", message="pay/pay_test.go:15:2: undefined: client"),
    },
    "dotnet.xml": {
        "AddsItem": run("passed"),
        'Totals(coupon: "TEN", expected: 90)': run(
            "failed", message="Assert.Equal() Failure: Values differ Expected: 90 Actual: 100"
        ),
        'Totals(coupon: "", expected: 100)': run("passed"),
        "ExportsCsv": run("skipped"),
    },
    "playwright.xml": {
        "[chromium] cart › adds an item": run("passed", file="checkout/cart.spec.ts"),
        "[chromium] cart › applies a coupon": run(
            "passed",
            retried=True,
            attempts=2,
            file="checkout/cart.spec.ts",
            message="expect(locator).toHaveText(expected) failed",
        ),
        "[chromium] cart › pays with card": run(
            "failed",
            attempts=2,
            file="checkout/cart.spec.ts",
            message="cart.spec.ts:30:7 pays with card",
        ),
        # The same test in another project is another test, not a second attempt.
        "[firefox] cart › adds an item": run("passed", file="checkout/cart.spec.ts"),
        "[firefox] cart › exports CSV": run(
            "skipped", file="checkout/cart.spec.ts", message="CSV export is flaky on Firefox"
        ),
    },
}

CLASSNAMES = {
    "pytest.xml": {"tests.test_cart"},
    "surefire.xml": {"com.acme.shop.CartTest"},
    "failsafe.xml": {"com.acme.shop.CheckoutIT"},
    "gradle.xml": {"com.acme.shop.StockTest"},
    "go.xml": {"example.com/shop/cart", "example.com/shop/search", "example.com/shop/pay"},
    "dotnet.xml": {"Acme.Shop.Tests.CartTests", "Acme.Shop.Tests.CsvTests"},
    "playwright.xml": {"checkout/cart.spec.ts"},
}

RAN_AT = {
    # pytest writes its zone (+01:00 here): 22:18 in Berlin is 21:18 UTC.
    "pytest.xml": datetime(2026, 12, 5, 21, 18, 15, 562368, tzinfo=UTC),
    "surefire.xml": None,  # Surefire and Failsafe write no timestamp
    "failsafe.xml": None,
    # Gradle, jest-junit and JunitXml.TestLogger write no zone: taken as UTC.
    "gradle.xml": datetime(2026, 3, 5, 10, 11, 12, tzinfo=UTC),
    "jest.xml": datetime(2026, 3, 5, 9, 12, 39, tzinfo=UTC),  # the earlier of two suites
    "go.xml": datetime(2026, 3, 5, 10, 19, 58, tzinfo=UTC),
    "dotnet.xml": datetime(2026, 3, 5, 10, 30, 5, tzinfo=UTC),
    "playwright.xml": datetime(2026, 3, 5, 11, 0, 3, 512000, tzinfo=UTC),
}

CASE_COUNTS = {
    "pytest.xml": 8,  # six tests, two of them rerun once
    "surefire.xml": 4,  # reruns are inside their <testcase>
    "failsafe.xml": 3,
    "gradle.xml": 6,
    "jest.xml": 5,
    "go.xml": 11,
    "dotnet.xml": 4,
    "playwright.xml": 5,
}


def test_every_sample_is_pinned_and_described():
    on_disk = {p.name for p in SAMPLES.glob("*.xml")}
    assert on_disk == set(EXPECTED)
    readme = (SAMPLES / "README.md").read_text()
    for sample in on_disk:
        assert f"`{sample}`" in readme
        assert len((SAMPLES / sample).read_text().splitlines()) <= 45  # small: about 40 lines


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_each_dialect_is_read_test_by_test(sample):
    got = results(sample)
    assert set(got) == set(EXPECTED[sample])
    for name, expected in EXPECTED[sample].items():
        r = got[name]
        assert (r.outcome, r.retried, r.attempts, r.file, r.message) == expected, name
    if sample in CLASSNAMES:
        assert {r.classname for r in got.values()} == CLASSNAMES[sample]


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_check_counts_the_cases_and_finds_the_run_time(sample):
    checked = junit.check((SAMPLES / sample).read_bytes(), name=sample, max_cases=100)
    assert checked.cases == CASE_COUNTS[sample]
    assert checked.ran_at == RAN_AT[sample]
    assert checked.ran_at is None or checked.ran_at.tzinfo is UTC
    assert len(list(junit.cases((SAMPLES / sample).read_bytes()))) == CASE_COUNTS[sample]


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_a_gzipped_sample_reads_the_same(sample):
    xml = (SAMPLES / sample).read_bytes()
    assert junit.unpack(junit.gzipped(xml), limit=LIMIT) == xml
    assert junit.unpack(xml, limit=LIMIT) == xml


def test_jest_without_the_file_attribute_has_no_file():
    xml = (SAMPLES / "jest.xml").read_bytes().replace(b' file="src/cart/cart.test.ts"', b"")
    got = {r.name: r for r in junit.run_results(junit.cases(xml))}
    assert got["Cart adds an item"].file == ""
    assert got["Search finds by sku"].file == "src/search/search.test.ts"


def test_pytest_duplicates_are_reruns_only_in_a_pytest_file():
    """Outside pytest, a test written twice without a failure is two passes, not a retry."""
    xml = b"""<testsuites><testsuite name="unit" tests="2">
      <testcase classname="a" name="t"/><testcase classname="a" name="t"/>
    </testsuite></testsuites>"""
    [r] = junit.run_results(junit.cases(xml))
    assert (r.outcome, r.retried, r.attempts) == ("passed", False, 2)
    pytest_xml = xml.replace(b'name="unit"', b'name="pytest"')
    [r] = junit.run_results(junit.cases(pytest_xml))
    assert (r.outcome, r.retried, r.attempts) == ("passed", True, 2)


def test_pytest_xunit1_gives_the_file():
    xml = b"""<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="1">
      <testcase classname="tests.test_cart" name="test_total" file="tests/test_cart.py" line="15"
      time="0.001"><failure message="assert 2 == 3">trace</failure></testcase>
    </testsuite></testsuites>"""
    [r] = junit.run_results(junit.cases(xml))
    assert (r.file, r.outcome, r.message) == ("tests/test_cart.py", "failed", "assert 2 == 3")


def test_utf16_with_a_byte_order_mark_is_read():
    xml = '<?xml version="1.0" encoding="UTF-16"?>\n<testsuite name="s"><testcase name="café"/>'
    data = (xml + "</testsuite>").encode("utf-16")
    assert junit.check(data, max_cases=10).cases == 1
    assert [c.name for c in junit.cases(data)] == ["café"]


def test_a_testsuite_root_nested_suites_and_an_empty_file():
    root_suite = b"""<?xml version="1.0"?>
<testsuite name="outer" timestamp="2026-01-02T03:04:05+02:00">
  <testcase classname="c" name="top"/>
  <testsuite name="inner" file="spec/inner_spec.rb">
    <testcase name="deep" file="spec/inner_spec.rb"><error message="boom"/></testcase>
    <testsuite name="innermost">
      <testcase classname="c" name="deeper"><skipped/></testcase>
    </testsuite>
  </testsuite>
</testsuite>"""
    checked = junit.check(root_suite, max_cases=10)
    assert checked.cases == 3
    assert checked.ran_at == datetime(2026, 1, 2, 1, 4, 5, tzinfo=UTC)
    got = list(junit.cases(root_suite))
    assert [(c.classname, c.name, c.outcome) for c in got] == [
        ("c", "top", "passed"),
        ("inner", "deep", "failed"),  # no classname: the suite's name
        ("c", "deeper", "skipped"),
    ]
    assert got[1].file == "spec/inner_spec.rb"
    assert got[1].message == "boom"

    for empty in (b"<testsuites/>", b"<testsuite name='x'></testsuite>"):
        assert junit.check(empty, max_cases=10) == junit.Checked(cases=0, ran_at=None)
        assert list(junit.cases(empty)) == []


def test_a_failure_beats_a_skip_in_one_testcase():
    """pytest writes a test skipped in its call and broken in teardown with both."""
    xml = b"""<testsuites><testsuite name="s">
      <testcase classname="c" name="t">
        <skipped message="not on CI"/>
        <error message="failed on teardown with &quot;OSError&quot;">trace</error>
      </testcase>
    </testsuite></testsuites>"""
    [case] = junit.cases(xml)
    assert (case.outcome, case.message) == ("failed", 'failed on teardown with "OSError"')


def test_messages_are_one_bounded_line_and_placeholders_give_way_to_the_text():
    long = "x" * 1000
    xml = f"""<testsuite name="s">
      <testcase classname="c" name="a">
        <failure message="line one&#10;  line two">t</failure>
      </testcase>
      <testcase classname="c" name="b"><failure>

   first real line
second line</failure></testcase>
      <testcase classname="c" name="c"><failure message="{long}"/></testcase>
      <testcase classname="c" name="d">
        <skipped message="Skipped">  why it skips</skipped>
      </testcase>
    </testsuite>""".encode()
    got = {c.name: c.message for c in junit.cases(xml)}
    assert got["a"] == "line one line two"
    assert got["b"] == "first real line"
    assert got["c"] == "x" * junit.MESSAGE_MAX
    assert got["d"] == "why it skips"


def test_timestamps_without_a_zone_are_utc_and_defaults_are_ignored():
    xml = b"""<testsuites>
      <testsuite name="a" timestamp="0001-01-01T00:00:00"><testcase name="t"/></testsuite>
      <testsuite name="b" timestamp="not a time"><testcase name="t"/></testsuite>
      <testsuite name="c" timestamp="2026-03-05T10:11:12"><testcase name="t"/></testsuite>
      <testsuite name="d" timestamp="2026-03-05T12:00:00+03:00"><testcase name="t"/></testsuite>
    </testsuites>"""
    assert junit.check(xml, max_cases=10).ran_at == datetime(2026, 3, 5, 9, 0, tzinfo=UTC)


def test_case_results_keep_the_interface_other_code_uses():
    [case] = junit.cases(b'<testsuite name="s"><testcase classname="c" name="t"/></testsuite>')
    assert case == CaseResult(
        classname="c", name="t", file="", outcome="passed", message="", failed_attempts=0
    )


# --- safety -----------------------------------------------------------------------------

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE testsuites [
  <!ENTITY xxe SYSTEM "file:///etc/passwd">
]>
<testsuites><testsuite name="&xxe;"><testcase name="t"/></testsuite></testsuites>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<testsuites><testsuite name="&lol9;"><testcase name="t"/></testsuite></testsuites>"""

PLAIN_DTD = b"""<?xml version="1.0"?>

<!DOCTYPE testsuites SYSTEM "junit.dtd">
<testsuites/>"""


@pytest.mark.parametrize(
    ("xml", "line"), [(XXE, 2), (BILLION_LAUGHS, 2), (PLAIN_DTD, 3)], ids=["xxe", "lol", "dtd"]
)
def test_a_dtd_is_refused_so_no_entity_is_ever_expanded(xml, line):
    for read in (
        lambda: junit.check(xml, name="evil.xml", max_cases=10),
        lambda: list(junit.cases(xml, name="evil.xml")),
    ):
        with pytest.raises(JUnitError) as caught:
            read()
        assert caught.value.line == line
        assert "DTD" in caught.value.reason
        assert str(caught.value).startswith(f"evil.xml, line {line}: ")
        assert "root:" not in str(caught.value)  # nothing of /etc/passwd


def test_a_gzip_bomb_is_too_large_without_being_inflated():
    limit = 1024 * 1024
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"\0" * (1024 * 1024)
    bomb = b"".join(packer.compress(chunk) for _ in range(64)) + packer.flush()
    assert len(bomb) < 100_000  # 64 MB once inflated
    tracemalloc.start()
    try:
        with pytest.raises(TooLarge, match=r"^bomb\.xml\.gz is over 1 MB once unzipped\.$"):
            junit.unpack(bomb, limit=limit, name="bomb.xml.gz")
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * limit  # about the limit, never the 64 MB


def test_unpack_bounds_plain_files_and_reads_concatenated_gzip():
    with pytest.raises(TooLarge, match=r"^big\.xml is over 1,000 bytes\.$"):
        junit.unpack(b" " * 1001, limit=1000, name="big.xml")
    assert junit.unpack(b" " * 1000, limit=1000) == b" " * 1000
    two = gzip.compress(b"<testsuites>") + gzip.compress(b"</testsuites>")
    assert junit.unpack(two, limit=1000) == b"<testsuites></testsuites>"
    with pytest.raises(TooLarge):
        junit.unpack(two, limit=20)


def test_a_truncated_or_broken_gzip_names_the_file():
    whole = gzip.compress(b"<testsuites>" + b"<testsuite name='s'/>" * 500 + b"</testsuites>")
    with pytest.raises(JUnitError, match=r"^cut\.xml\.gz: the gzip file is cut short$"):
        junit.unpack(whole[: len(whole) // 2], limit=LIMIT, name="cut.xml.gz")
    with pytest.raises(JUnitError, match=r"^bad\.xml\.gz: not a readable gzip file"):
        junit.unpack(b"\x1f\x8b" + b"\xff" * 40, limit=LIMIT, name="bad.xml.gz")


@pytest.mark.parametrize(
    ("xml", "line", "reason"),
    [
        (b"PK\x03\x04 this is a zip", 1, "not well-formed XML (invalid token)"),
        (b"", 1, "not well-formed XML (no element found)"),
        (
            b'<?xml version="1.0"?>\n<testsuites>\n  <testsuite name="s">\n'
            b'    <testcase name="a">\n  </testsuite>\n</testsuites>',
            5,
            "not well-formed XML (mismatched tag)",
        ),
        (
            b"<testsuites>\n<testsuite name='s'>\n<testcase name='a'/>\n",
            4,
            "not well-formed XML (no element found)",
        ),
        (
            b'<?xml version="1.0"?>\n<html><body>502 Bad Gateway</body></html>',
            2,
            "the root element is <html>, not <testsuites> or <testsuite>",
        ),
        (
            b'<testsuites>\n  <testsuite name="s">\n    <testcase name="ok"/>\n'
            b'    <testcase classname="c"/>\n  </testsuite>\n</testsuites>',
            4,
            "a <testcase> without a name attribute",
        ),
        (
            b'<testsuite name="s">\n<testcase classname="c" name=""/>\n</testsuite>',
            2,
            "a <testcase> without a name attribute",
        ),
    ],
    ids=["not-xml", "empty", "mismatched", "truncated", "wrong-root", "no-name", "empty-name"],
)
def test_check_refuses_with_the_file_line_and_reason(xml, line, reason):
    with pytest.raises(JUnitError) as caught:
        junit.check(xml, name="results.xml", max_cases=10)
    assert (caught.value.file, caught.value.line, caught.value.reason) == (
        "results.xml",
        line,
        reason,
    )
    assert str(caught.value) == f"results.xml, line {line}: {reason}"


def test_cases_refuses_what_check_refuses():
    with pytest.raises(JUnitError, match=r"^r\.xml, line 2: not well-formed XML"):
        list(junit.cases(b"<testsuites>\n<oops></testsuites>", name="r.xml"))
    with pytest.raises(JUnitError, match=r"^r\.xml, line 2: the root element is <html>"):
        list(junit.cases(b"<?xml version='1.0'?>\n<html/>", name="r.xml"))
    with pytest.raises(JUnitError, match="without a name"):
        list(junit.cases(b"<testsuite name='s'><testcase classname='c'/></testsuite>"))


def test_over_the_case_limit_is_too_large():
    xml = b"<testsuite name='s'>" + b"<testcase name='t'/>" * 11 + b"</testsuite>"
    assert junit.check(xml, max_cases=11).cases == 11
    with pytest.raises(TooLarge, match=r"^big\.xml: more than 10 test cases in one upload"):
        junit.check(xml, name="big.xml", max_cases=10)


def generated(count: int) -> bytes:
    """A Surefire-shaped file of `count` cases, a tenth of them failing with a stack trace."""
    parts = [b'<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n']
    for suite in range(count // 100):
        parts.append(
            f'<testsuite name="com.acme.S{suite}" tests="100" timestamp="2026-03-05T10:00:00">\n'
            f'<properties><property name="java.version" value="21"/></properties>\n'.encode()
        )
        for case in range(100):
            parts.append(
                f'<testcase name="test{case}" classname="com.acme.S{suite}" time="0.01"'.encode()
            )
            if case % 10 == 0:
                parts.append(
                    b'><failure message="expected: &lt;1&gt; but was: &lt;2&gt;" type="A">'
                    b"org.opentest4j.AssertionFailedError\n\tat com.acme.S.t(S.java:1)\n"
                    b"</failure></testcase>\n"
                )
            else:
                parts.append(b"/>\n")
        parts.append(b"</testsuite>\n")
    parts.append(b"</testsuites>\n")
    return b"".join(parts)


def test_check_of_20000_cases_is_fast():
    """check runs inside the upload request: well under half a second for 20,000 cases."""
    xml = generated(20_000)
    best = min(_timed(lambda: junit.check(xml, name="big.xml", max_cases=20_000)) for _ in range(3))
    assert junit.check(xml, max_cases=20_000).cases == 20_000
    assert best < 0.5, f"check took {best:.3f} s"
    folded = junit.run_results(junit.cases(xml))
    assert len(folded) == 20_000
    assert sum(r.outcome == "failed" for r in folded) == 2_000


def _timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started
