"""Importing escapes from a CSV file: preview everything first, then write all or nothing.

A row's identity is its `key` column, or else a digest of its normalised values, stored as
the escape's `external_id` with source=csv; a row whose identity the team already has is
"already imported", so importing the same file twice creates nothing twice.
"""

import csv
import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from config import csv_safe
from escapes.models import Category, Escape, PipelineStage, Release, Severity, Source
from escapes.services import escape_build
from escapes.signals import escapes_changed_send
from teams.models import Team

REQUIRED_COLUMNS = ("title", "detected_at")
TIME_COLUMNS = ("merged_at", "released_at", "detected_at", "resolved_at")
TEXT_COLUMNS = ("title", "description", "component", "tracker_key", "tracker_url")
COLUMNS = (
    "title",
    "detected_at",
    "merged_at",
    "released_at",
    "resolved_at",
    "category",
    "stage",
    "severity",
    "component",
    "release",
    "tracker_key",
    "tracker_url",
    "description",
    "key",
)
KEY_MAX = 128  # Escape.external_id
BATCH_SIZE = 500
ROW = "row"  # the "column" of errors about a whole row
TIME_HINT = "e.g. 2026-03-14T09:30 (team time) or 2026-03-14T09:30:00+01:00"
# The separators a spreadsheet writes: Excel in many European locales saves "CSV" with `;`,
# and "text (tab-delimited)" with tabs. The header row tells which one a file uses.
DELIMITERS = (",", ";", "\t")
EARLIER, LATER = 0, 1  # which of an ambiguous local time's two moments: datetime.fold


def _offset(delta: timedelta | None) -> str:
    minutes = int((delta or timedelta()).total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _transition(local: datetime, zone: tzinfo) -> tuple[datetime, datetime]:
    """The wall-clock times on either side of the clock change next to `local` (naive):
    (02:00, 03:00) for a spring-forward jump, (03:00, 02:00) for a fall back."""
    before = local.replace(tzinfo=zone, fold=0).utcoffset() or timedelta()
    after = local.replace(tzinfo=zone, fold=1).utcoffset() or timedelta()
    low = (local - max(before, after)).replace(tzinfo=UTC) - timedelta(hours=1)
    high = (local - min(before, after)).replace(tzinfo=UTC) + timedelta(hours=1)
    while high - low > timedelta(minutes=1):  # the first UTC minute on the new offset
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == after:
            high = middle
        else:
            low = middle
    change = high.replace(second=0, microsecond=0)
    return (change + before).replace(tzinfo=None), (change + after).replace(tzinfo=None)


class AmbiguousLocalTime(Exception):
    """A local time that happens twice (the clocks went back over it): the file must say which."""

    def __init__(self, local: datetime, zone: tzinfo) -> None:
        super().__init__(f"{local} is ambiguous")
        self.earlier = local.replace(tzinfo=zone, fold=EARLIER)
        self.later = local.replace(tzinfo=zone, fold=LATER)
        self.back_from, self.back_to = _transition(local, zone)
        name = str(zone)
        self.message = (
            f"{local:%H:%M} on {local.day} {local:%b %Y} happens twice in {name}: clocks go "
            f"back from {self.back_from:%H:%M} to {self.back_to:%H:%M}; choose which one below"
        )


@dataclass
class Ambiguity:
    """One ambiguous cell of a row and the choice made for it (None: not yet asked)."""

    line: int
    column: str
    earlier: datetime
    later: datetime
    message: str
    chosen: int | None = None

    @property
    def field_name(self) -> str:
        return f"fold-{self.line}-{self.column}"

    @property
    def options(self) -> list[tuple[int, str]]:
        return [
            (
                EARLIER,
                f"the first, {_offset(self.earlier.utcoffset())} (before the clocks go back)",
            ),
            (LATER, f"the second, {_offset(self.later.utcoffset())} (after the clocks go back)"),
        ]


def folds_from(data: Mapping[str, Any]) -> dict[str, int]:
    """The choices for ambiguous times in a submitted form: {"fold-7-detected_at": 1, ...}."""
    return {
        name: int(value)
        for name, value in data.items()
        if name.startswith("fold-") and value in (str(EARLIER), str(LATER))
    }


class CsvImportRefused(Exception):
    """The file has errors (or changed since its preview); nothing was written."""

    def __init__(self, preview: "ImportPreview") -> None:
        super().__init__("The CSV file has errors; nothing was imported.")
        self.preview = preview


@dataclass
class PreviewRow:
    line: int
    values: dict[str, str]
    errors: dict[str, list[str]] = field(default_factory=dict)
    external_id: str = ""
    # Of the parsed values without the key: tells a repeated row from another reusing a key.
    digest: str = ""
    state: str = "new"  # new | existing | duplicate | error
    data: dict[str, Any] = field(default_factory=dict)
    # The validated, unsaved escape of a new row.
    escape: Escape | None = field(default=None, repr=False)
    # Local times that happen twice, each with the choice made (or not yet) in the preview.
    ambiguous: list[Ambiguity] = field(default_factory=list)

    @property
    def cells(self) -> list[tuple[str, str, list[str]]]:
        """(column, value, its errors) in the file's column order."""
        return [
            (column, value, self.errors.get(column, [])) for column, value in self.values.items()
        ]

    def error_messages(self) -> list[str]:
        """Each error as "line 7, detected_at: This time is in the future." """
        where = f"line {self.line}"
        return [
            f"{where}: {message}" if column == ROW else f"{where}, {column}: {message}"
            for column, messages in self.errors.items()
            for message in messages
        ]


@dataclass
class ImportPreview:
    columns: list[str] = field(default_factory=list)
    rows: list[PreviewRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # about the file as a whole

    def _count(self, state: str) -> int:
        return sum(1 for row in self.rows if row.state == state)

    @property
    def new_count(self) -> int:
        return self._count("new")

    @property
    def existing_count(self) -> int:
        return self._count("existing")

    @property
    def duplicate_count(self) -> int:
        return self._count("duplicate")

    @property
    def error_count(self) -> int:
        return self._count("error")

    @property
    def importable(self) -> bool:
        return not self.problems and self.error_count == 0 and bool(self.rows)

    @property
    def ambiguities(self) -> list[Ambiguity]:
        """The ambiguous local times of rows that would be imported: the preview asks."""
        return [a for row in self.rows if row.state == "new" for a in row.ambiguous]

    @property
    def unresolved(self) -> list[Ambiguity]:
        return [a for a in self.ambiguities if a.chosen is None]


@dataclass(frozen=True)
class ImportResult:
    created: list[Escape]
    existing_count: int
    duplicate_count: int


@dataclass
class _Lookups:
    """The team's stages and releases, fetched once per file."""

    stages: dict[str, PipelineStage]
    releases: dict[str, Release]

    @classmethod
    def for_team(cls, team: Team) -> "_Lookups":
        return cls(
            stages={s.name.casefold(): s for s in PipelineStage.objects.filter(team=team)},
            releases={r.version: r for r in Release.objects.filter(team=team)},
        )


def _decode(content: bytes) -> tuple[str | None, str | None]:
    """(text, None) or (None, the problem)."""
    if not content.strip():
        return None, "The file is empty."
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is not None and len(content) > limit:
        return None, f"The file is larger than {filesizeformat(limit)}."
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, (
            f"The file is not UTF-8 text (byte {exc.start + 1} cannot be read). "
            "Save it as “CSV UTF-8” and upload it again."
        )
    if "\x00" in text:
        return None, "The file contains NUL bytes: it looks binary, not CSV."
    return text, None


def _header(raw: list[str]) -> tuple[list[str], list[str]]:
    """Normalised column names ("Detected At" -> detected_at), and problems with them."""
    columns = [name.strip().casefold().replace(" ", "_").replace("-", "_") for name in raw]
    problems = []
    unknown = [raw[i].strip() for i, c in enumerate(columns) if c not in COLUMNS]
    if unknown:
        problems.append(
            f"Unknown column(s): {', '.join(repr(u) for u in unknown)}. "
            f"The columns are: {', '.join(COLUMNS)}."
        )
    repeated = sorted({c for c in columns if columns.count(c) > 1 and c in COLUMNS})
    if repeated:
        problems.append(f"Column(s) given twice: {', '.join(repeated)}.")
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        problems.append(f"Missing required column(s): {', '.join(missing)}.")
    return columns, problems


def _parse_time(value: str, team: Team, fold: int | None = None) -> datetime:
    """The time, a naive one in the team's zone: one that does not exist there (skipped by a
    spring-forward change) is refused; one that happens twice needs `fold` (else
    AmbiguousLocalTime)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"Not an ISO 8601 time; {TIME_HINT}.") from None
    if not timezone.is_naive(parsed):
        return parsed
    zone = team.tzinfo
    first, second = parsed.replace(tzinfo=zone, fold=0), parsed.replace(tzinfo=zone, fold=1)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != parsed:
        jump_from, jump_to = _transition(parsed, zone)
        raise ValidationError(
            f"{parsed:%H:%M} on {parsed.day} {parsed:%b %Y} does not exist in {zone}: clocks "
            f"jump from {jump_from:%H:%M} to {jump_to:%H:%M}; give the time with its offset, "
            f"e.g. {parsed:%Y-%m-%dT%H:%M}{_offset(first.utcoffset())[3:]}."
        )
    if first.utcoffset() != second.utcoffset():
        if fold is None:
            raise AmbiguousLocalTime(parsed, zone)
        # In UTC: an aware time in the fold compares unequal to every other zone's (PEP 495).
        return (first if fold == EARLIER else second).astimezone(UTC)
    return first


def _parse_choice(value: str, choices: list[tuple[str, str]], column: str) -> str:
    for choice_value, label in choices:
        if value.casefold() in (choice_value.casefold(), label.casefold()):
            return choice_value
    names = ", ".join(f"{v} ({label})" for v, label in choices)
    raise ValidationError(f"Unknown {column}; choose one of {names}.")


def _parse_value(
    column: str, value: str, team: Team, lookups: _Lookups, fold: int | None = None
) -> Any:
    if column in TIME_COLUMNS:
        return _parse_time(value, team, fold)
    if column == "category":
        return _parse_choice(value, Category.choices, "category")
    if column == "severity":
        return _parse_choice(value, Severity.choices, "severity")
    if column == "stage":
        stage = lookups.stages.get(value.casefold())
        if stage is None:
            names = ", ".join(s.name for s in lookups.stages.values())
            raise ValidationError(f"Unknown stage; this team's stages are {names}.")
        return stage
    if column == "release":
        if value not in lookups.releases:
            raise ValidationError(f"Unknown release {value!r}; add the release first.")
        return lookups.releases[value]
    return value


def _canonical(column: str, value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, PipelineStage):
        return value.name.casefold()
    if isinstance(value, Release):
        return value.version
    return str(value)


def _parse_row(row: PreviewRow, team: Team, lookups: _Lookups, folds: Mapping[str, int]) -> None:
    """Fill row.data (service input) and row.external_id, or row.errors.

    An ambiguous local time takes the choice in `folds`; without one it is noted in
    row.ambiguous (the preview asks) and the earlier moment stands in to check the rest."""
    canonical: dict[str, str] = {}
    for column, value in row.values.items():
        if column == "key" or not value:
            continue
        try:
            try:
                parsed = _parse_value(column, value, team, lookups)
            except AmbiguousLocalTime as ambiguous:
                noted = Ambiguity(
                    line=row.line,
                    column=column,
                    earlier=ambiguous.earlier,
                    later=ambiguous.later,
                    message=ambiguous.message,
                )
                noted.chosen = folds.get(noted.field_name)
                row.ambiguous.append(noted)
                fold = EARLIER if noted.chosen is None else noted.chosen
                parsed = _parse_value(column, value, team, lookups, fold)
        except ValidationError as exc:
            row.errors.setdefault(column, []).extend(exc.messages)
            continue
        row.data[column] = parsed
        canonical[column] = _canonical(column, parsed)
    for column in REQUIRED_COLUMNS:
        if not row.values.get(column):
            row.errors.setdefault(column, []).append("This column is required.")
    key = row.values.get("key", "")
    if len(key) > KEY_MAX:
        row.errors.setdefault("key", []).append(f"A key has at most {KEY_MAX} characters.")
    digest = hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()
    row.digest = digest
    row.external_id = key or f"sha256:{digest}"


def _delimiter(text: str) -> str:
    """The separator under which the header names the most known columns (a comma on a tie)."""
    first = next((line for line in text.splitlines() if line.strip()), "")

    def known(delimiter: str) -> int:
        try:
            raw = next(csv.reader([first], delimiter=delimiter))
        except (csv.Error, StopIteration):
            return 0
        columns, _ = _header(raw)
        return sum(1 for c in columns if c in COLUMNS)

    return max(DELIMITERS, key=known)  # max keeps the first of equals: the comma


def _read_rows(text: str, preview: ImportPreview) -> list[PreviewRow]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True, delimiter=_delimiter(text))
    rows: list[PreviewRow] = []
    max_rows = settings.LEAKSEAL_CSV_MAX_ROWS
    header: list[str] | None = None
    line = 1
    try:
        for raw in reader:
            start, line = line, reader.line_num + 1
            if not any(cell.strip() for cell in raw):
                continue
            if header is None:
                header, problems = _header(raw)
                preview.columns = header
                preview.problems.extend(problems)
                if problems:
                    return []
                continue
            if len(rows) >= max_rows:
                preview.problems.append(f"The file has more than {max_rows} rows; split it.")
                return []
            values = {c: csv_safe.uncell(v.strip()) for c, v in zip(header, raw, strict=False)}
            row = PreviewRow(line=start, values=values)
            if len(raw) != len(header):
                row.errors[ROW] = [f"This row has {len(raw)} fields; the header has {len(header)}."]
            rows.append(row)
    except csv.Error as exc:
        preview.problems.append(f"Line {reader.line_num}: the CSV cannot be read ({exc}).")
        return []
    if header is None:
        preview.problems.append("The file has no header row.")
    elif not rows:
        preview.problems.append("The file has a header but no rows.")
    return rows


def _classify(rows: list[PreviewRow], team: Team) -> None:
    """Mark each parsed row new, existing, duplicate (of an earlier row) or error."""
    ids = [row.external_id for row in rows if not row.errors]
    existing = set(
        Escape.objects.filter(team=team, source=Source.CSV, external_id__in=ids).values_list(
            "external_id", flat=True
        )
    )
    seen: dict[str, PreviewRow] = {}
    for row in rows:
        if row.errors:
            continue
        earlier = seen.get(row.external_id)
        if earlier is not None:
            if earlier.digest != row.digest:
                row.errors["key"] = [f"Line {earlier.line} has this key with other values."]
            else:
                row.state = "duplicate"
            continue
        seen[row.external_id] = row
        if row.external_id in existing:
            row.state = "existing"
    for row in rows:
        if row.errors:
            row.state = "error"
        elif row.state == "new":
            _validate(row, team)


def _validate(row: PreviewRow, team: Team) -> None:
    try:
        row.escape = escape_build(
            team=team, data=row.data, source=Source.CSV, external_id=row.external_id
        )
    except ValidationError as exc:
        for column, messages in exc.message_dict.items():
            column = ROW if column == "__all__" else column
            row.errors.setdefault(column, []).extend(messages)
        row.state = "error"


def csv_preview(
    team: Team, content: bytes, folds: Mapping[str, int] | None = None
) -> ImportPreview:
    """Parse and validate every row; write nothing.

    `folds` answers the preview's questions about ambiguous local times (`folds_from`)."""
    preview = ImportPreview()
    text, problem = _decode(content)
    if problem is not None or text is None:
        preview.problems.append(problem or "The file cannot be read.")
        return preview
    rows = _read_rows(text, preview)
    if preview.problems:
        return preview
    lookups = _Lookups.for_team(team)
    for row in rows:
        _parse_row(row, team, lookups, folds or {})
    _classify(rows, team)
    preview.rows = rows
    return preview


def csv_import(
    team: Team, content: bytes, user: User | None, folds: Mapping[str, int] | None = None
) -> ImportResult:
    """Create every new row's escape in one transaction, or none and raise CsvImportRefused.

    Every ambiguous local time of a new row must be answered in `folds`.

    The file is parsed again inside the transaction: what was valid at preview time may not
    be now (a release deleted, the same file imported meanwhile in another tab).
    """
    try:
        with transaction.atomic():
            preview = csv_preview(team, content, folds)
            if not preview.importable or preview.unresolved:
                raise CsvImportRefused(preview)
            # The rows were validated by escape_build (escape_create is build + save);
            # writing them in batches keeps a 5,000-row file to seconds, not minutes.
            new = [row.escape for row in preview.rows if row.state == "new" and row.escape]
            for escape in new:
                escape.created_by = user
            created = Escape.objects.bulk_create(new, batch_size=BATCH_SIZE)
            escapes_changed_send(team=team, detected=[e.detected_at for e in created])
    except IntegrityError:
        # Someone imported the same rows between our check and our insert.
        preview = csv_preview(team, content, folds)
        preview.problems.append("The file was being imported at the same time; preview it again.")
        raise CsvImportRefused(preview) from None
    return ImportResult(
        created=created,
        existing_count=preview.existing_count,
        duplicate_count=preview.duplicate_count,
    )


def template_rows(team: Team) -> list[list[str]]:
    """The header and one example row for the downloadable template."""
    stage = PipelineStage.objects.filter(team=team).order_by("position", "id").first()
    example = {
        "title": "Checkout times out under payment gateway latency",
        "detected_at": "2026-03-14T09:30",
        "merged_at": "2026-03-02T16:05",
        "released_at": "2026-03-10T08:00",
        "resolved_at": "",
        "category": Category.COVERAGE_GAP.label,
        "stage": stage.name if stage else "",
        "severity": Severity.HIGH.value,
        "component": "payments",
        "release": "",
        "tracker_key": "PAY-123",
        "tracker_url": "https://tracker.example.com/browse/PAY-123",
        "description": "Timeouts above 5 s were never exercised in staging.",
        "key": "",
    }
    return [list(COLUMNS), [example[c] for c in COLUMNS]]
