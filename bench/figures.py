"""What the benchmarks share: the fake AWS environment, a typical complaint, and the table
of figures each one prints at the end (value, target, met or MISSED)."""

from __future__ import annotations

import statistics
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "eu-central-1",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}

COMPLAINT = {
    "kind": "wrong_item",
    "customer": {"name": "王芳", "email": "wang.fang@example.com", "phone": "+86 138 0000 0000"},
    "order_ref": "SO-2026-1042",
    "product": "Electric kettle KT-200, red",
    "serial_no": "KT200-0042-7781",
    "purchase_date": "2026-01-15",
    "description": "收到的是蓝色，订的是红色。The kettle delivered is blue; I ordered red. " * 4,
    "language": "zh",
}


@dataclass
class Row:
    figure: str
    value: str
    target: str = "-"
    verdict: str = "info"


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, figure: str, value: str, target: str = "-", verdict: str = "info") -> None:
        self.rows.append(Row(figure, value, target, verdict))

    def judge(self, figure: str, value: str, target: str, met: bool) -> None:
        self.add(figure, value, target, "target met" if met else "MISSED")

    def broke(self, what: str, why: str) -> None:
        self.problems.append(f"{what}: {why}")
        self.add(what, "-", "-", "FAILED")
        print(f"  !! {what}: {why}")

    def table(self) -> str:
        headers = ("figure", "value", "target", "result")
        cells = [headers] + [(r.figure, r.value, r.target, r.verdict) for r in self.rows]
        widths = [max(len(c[i]) for c in cells) for i in range(4)]
        line = "-+-".join("-" * w for w in widths)
        out = [" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)), line]
        out += [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
                for row in cells[1:]]
        return "\n".join(out)


def section(title: str) -> None:
    print(f"\n== {title} ==", flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float], fmt: str = "{:.1f}") -> str:
    return f"{fmt.format(min(values))}–{fmt.format(max(values))}"


def guarded(report: Report, title: str, step: Callable[[], None]) -> None:
    """One figure: a failure is printed and listed, and the other figures still run."""
    section(title)
    try:
        step()
    except Exception as error:  # keep going: the other figures still mean something
        traceback.print_exc()
        report.broke(title, f"{type(error).__name__}: {error}")


def summary(report: Report, seconds: float) -> int:
    """The table of figures; exit status 1 if any figure could not be measured."""
    section(f"summary ({seconds:.0f} s)")
    print(report.table())
    if report.problems:
        print("\nsomething broke:")
        for problem in report.problems:
            print(f"  - {problem}")
        return 1
    return 0
