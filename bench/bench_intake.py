"""Intake benchmark: prints figures, it is not a timed test.

    .venv/bin/python bench/bench_intake.py [--package-dir build/package] [--skip-package]

1. DynamoDB API calls per new submission, per replay (same Idempotency-Key and body),
   and per status read, counted with botocore event handlers, per operation.
2. Submissions/s through the Chalice test client against moto, next to a bare put_item
   loop (and a bare UpdateItem + TransactWriteItems loop) on the same moto table.
   The loops alternate round by round; the ratios are medians of per-round ratios.
3. Import time of app.py (cold-start proxy) next to ``import chalice, boto3, pydantic``,
   in fresh interpreters, alternating, medians; and heavy modules the import pulls in.
4. Size of deployment.zip from ``chalice package --stage dev``.

Targets are reported as "target met" / "MISSED"; the exit status is non-zero only when
something breaks (a request fails, a subprocess crashes, packaging fails).
Never talks to AWS: everything runs against moto (mock_aws) with fake credentials.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import figures  # bench/ is on the path: the benches run as scripts
from figures import COMPLAINT, FAKE_AWS, ROOT, Report, median, spread

TABLE = "service-desk-bench"
DEV_TABLE = "service-desk-dev"  # the dev stage's SERVICE_DESK_TABLE_NAME (.chalice/config.json)
MAIL_FROM = "service@example.com"

PHOTO_BUCKET = "service-desk-photos-bench"
APP_ENV = {
    "SERVICE_DESK_TABLE_NAME": TABLE,
    "SERVICE_DESK_PHOTO_BUCKET": PHOTO_BUCKET,
    "SERVICE_DESK_PUBLIC_BASE_URL": "http://127.0.0.1:8000",
}
# Before anything creates a boto3 session or client.
os.environ.update(FAKE_AWS)
os.environ.update(APP_ENV)
for _name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "SERVICE_DESK_MAIL_DROP_DIR"):
    os.environ.pop(_name, None)

TARGET_CALLS = 2
TARGET_PUT_RATIO = 3.0
TARGET_IMPORT_RATIO = 1.25
TARGET_ZIP_MB = 15.0

JSON_HEADERS = {"Content-Type": "application/json"}

# Modules `import app` should not pull in (dev/test tools, lazily used libraries).
SHOULD_NOT_IMPORT = [
    "gspread", "openpyxl", "jinja2", "markupsafe", "moto", "requests", "pytest",
    "hypothesis", "playwright", "time_machine", "cfnlint", "werkzeug", "flask", "yaml",
    "pandas", "numpy", "dns",
]
# Present but reported for information (needed, or wanted to know about).
WATCH_IMPORT = ["email_validator", "idna", "pydantic_settings", "dotenv", "asyncio"]
DEV_ONLY_IN_ZIP = [
    "boto3", "botocore", "s3transfer", "moto", "gspread", "openpyxl", "pytest",
    "hypothesis", "playwright", "mypy", "ruff", "cfnlint", "requests",
]


# -- reporting -------------------------------------------------------------------------


# -- counting DynamoDB calls -----------------------------------------------------------


class CallCounter:
    """botocore handlers on the boto3 default session: every client the app creates
    afterwards (the store's lazily created one included) reports to this."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.sends = 0
        self.transact_params: dict[str, Any] | None = None

    def install(self, events: Any) -> None:
        events.register("before-call.dynamodb", self._on_call)
        events.register("before-parameter-build.dynamodb", self._on_params)
        # First, so moto's before-send stub (a built-in handler) cannot hide it.
        events.register_first("before-send.dynamodb", self._on_send)

    def _on_call(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def _on_send(self, **_: Any) -> None:
        self.sends += 1

    def _on_params(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "TransactWriteItems":
            self.transact_params = copy.deepcopy(params)

    def reset(self) -> None:
        self.calls.clear()
        self.sends = 0

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def breakdown(self) -> str:
        return ", ".join(f"{name} {n}" for name, n in sorted(self.calls.items())) or "none"


@dataclass
class Moto:
    """What the in-process measurements share."""

    counter: CallCounter
    bench_ddb: Any  # a client of a separate session: the bench's own calls are not counted


@contextmanager
def moto_environment() -> Iterator[Moto]:
    import boto3
    from moto import mock_aws  # before any session: moto hooks into botocore's handlers

    from chalicelib import bootstrap
    from local.table import create_table

    with mock_aws():
        boto3.setup_default_session()
        counter = CallCounter()
        counter.install(boto3.DEFAULT_SESSION.events)  # type: ignore[union-attr]
        bench_session = boto3.session.Session()
        bench_ddb = bench_session.client("dynamodb")
        for name in (TABLE, DEV_TABLE):
            create_table(bench_ddb, name)
        bench_session.client("ses").verify_email_identity(EmailAddress=MAIL_FROM)
        bench_session.client("s3").create_bucket(
            Bucket=PHOTO_BUCKET,
            CreateBucketConfiguration={"LocationConstraint": FAKE_AWS["AWS_DEFAULT_REGION"]},
        )
        bootstrap.reset()
        try:
            yield Moto(counter=counter, bench_ddb=bench_ddb)
        finally:
            bootstrap.reset()


def chalice_client(stage: str) -> Any:
    from chalice.test import Client

    from app import app

    client = Client(app, stage_name=stage, project_dir=str(ROOT))
    stage_env = client._chalice_config.scope(stage, "api_handler").environment_variables
    if "SERVICE_DESK_RATE_LIMIT_ENABLED" not in stage_env:
        raise RuntimeError(f"stage {stage!r} of .chalice/config.json was not loaded")
    return client


def post_case(http: Any, key: str, body: bytes) -> Any:
    return http.post("/api/cases", headers={**JSON_HEADERS, "Idempotency-Key": key}, body=body)


def counter_value(ddb: Any, table: str) -> int:
    item = ddb.get_item(
        TableName=table,
        Key={"PK": {"S": "COUNTER#case_number"}, "SK": {"S": "COUNTER"}},
        ConsistentRead=True,
    ).get("Item")
    return int(item["n"]["N"]) if item else 0


# -- 1. calls per request --------------------------------------------------------------


def measure_calls(report: Report, env: Moto, stage: str, table: str, judged: bool) -> None:
    from chalicelib import bootstrap
    from chalicelib.settings import get_settings

    bootstrap.reset()  # settings are read (and cached) inside the first request of the stage
    counter = env.counter
    body = json.dumps(COMPLAINT).encode()
    label = f"{stage} stage" + (" (rate limits off)" if stage == "local" else " (rate limits on)")
    new_calls, replay_calls, status_calls = [], [], []
    with chalice_client(stage) as client:
        http = client.http
        for _ in range(3):
            key = uuid.uuid4().hex
            counter.reset()
            first = post_case(http, key, body)
            new_calls.append((counter.total, counter.breakdown(), counter.sends))
            if first.status_code != 201:
                report.broke(f"new submission ({label})",
                             f"HTTP {first.status_code} {first.body!r}")
                return
            items = len((counter.transact_params or {}).get("TransactItems", []))
            before = counter_value(env.bench_ddb, table)
            counter.reset()
            again = post_case(http, key, body)
            replay_calls.append((counter.total, counter.breakdown(), counter.sends))
            burned = counter_value(env.bench_ddb, table) - before
            if again.status_code != 201 or again.body != first.body:
                report.broke(
                    f"replayed submission ({label})",
                    f"HTTP {again.status_code}, same receipt: {again.body == first.body}",
                )
                return
            token = json.loads(first.body)["status_url"].rsplit("/", 1)[1]
            counter.reset()
            status = http.get(f"/api/status/{token}")
            status_calls.append((counter.total, counter.breakdown(), counter.sends))
            shown = json.loads(status.body) if status.status_code == 200 else {}
            if shown.get("case_number") != json.loads(first.body)["case_number"]:
                report.broke(f"status read ({label})", f"HTTP {status.status_code}")
                return
        settings = get_settings()
    print(f"  {label}: table {settings.table_name}, rate limits "
          f"{'on' if settings.rate_limit_enabled else 'off'}, "
          f"{items} items in the TransactWriteItems of a new submission")
    for what, samples in (("new submission", new_calls), ("replay", replay_calls),
                          ("status read", status_calls)):
        totals = {s[0] for s in samples}
        print(f"    {what:15} calls {sorted(totals)} ({samples[-1][1]}); "
              f"HTTP requests incl. retries {samples[-1][2]}")
    print(f"    a replay advanced the case-number counter by {burned}"
          + (" (the replay burns a case number: gaps in the sequence)" if burned else ""))
    worst_new = max(s[0] for s in new_calls)
    worst_replay = max(s[0] for s in replay_calls)
    if judged:
        report.judge("DynamoDB calls / new submission", f"{worst_new} ({new_calls[-1][1]})",
                     f"≤ {TARGET_CALLS}", worst_new <= TARGET_CALLS)
        report.judge("DynamoDB calls / replayed submission",
                     f"{worst_replay} ({replay_calls[-1][1]})",
                     f"≤ {TARGET_CALLS}", worst_replay <= TARGET_CALLS)
        report.add("DynamoDB calls / status read", f"{max(s[0] for s in status_calls)} "
                   f"({status_calls[-1][1]})")
    else:
        report.add(f"calls new / replay, {label}", f"{worst_new} / {worst_replay} "
                   f"({items} transaction items)")


# -- 2. throughput ---------------------------------------------------------------------


def item_size(item: dict[str, Any]) -> int:
    """Roughly DynamoDB's item size: names plus JSON-ish values."""
    return len(json.dumps(item, ensure_ascii=False).encode())


def fresh_keys(transact: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same transaction with new partition keys (same sharing of partitions)."""
    items = copy.deepcopy(transact)
    renamed: dict[str, str] = {}
    for entry in items:
        op = entry.get("Put")
        if op is None:
            continue
        pk = op["Item"]["PK"]["S"]
        prefix = pk.split("#", 1)[0]
        renamed.setdefault(pk, f"{prefix}#bench-{uuid.uuid4().hex}")
        op["Item"]["PK"]["S"] = renamed[pk]
    return items


def measure_throughput(report: Report, env: Moto, rounds: int, batch: int) -> None:
    from chalicelib import bootstrap
    from local.table import create_table

    bootstrap.reset()
    counter, ddb = env.counter, env.bench_ddb
    body = json.dumps(COMPLAINT).encode()
    with chalice_client("local") as client:
        http = client.http
        counter.transact_params = None
        if post_case(http, uuid.uuid4().hex, body).status_code != 201:
            report.broke("submission throughput", "warm-up submission failed")
            return
        transact = (counter.transact_params or {}).get("TransactItems", [])
        if not transact:
            report.broke("submission throughput", "no TransactWriteItems seen")
            return
        case_put = max((t["Put"]["Item"] for t in transact if "Put" in t), key=item_size)
        put_bytes = item_size(case_put)

        def put_item_for(_: int) -> dict[str, Any]:
            item = copy.deepcopy(case_put)
            item["PK"] = {"S": f"CASE#bench-{uuid.uuid4().hex}"}
            return item

        counter_update = {
            "TableName": TABLE,
            "Key": {"PK": {"S": "COUNTER#case_number"}, "SK": {"S": "COUNTER"}},
            "UpdateExpression": "ADD n :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
            "ReturnValues": "UPDATED_NEW",
        }
        # A client like the store's (same retry config), of the bench's uncounted session.
        import boto3
        from botocore.config import Config

        bare = boto3.session.Session().client(
            "dynamodb", config=Config(retries={"mode": "standard", "max_attempts": 4})
        )

        def empty_table() -> None:
            # moto deep-copies the whole table for every item of a TransactWriteItems, and
            # deleting items leaves their partitions behind: only a new table is empty.
            ddb.delete_table(TableName=TABLE)
            create_table(ddb, TABLE)

        def run_submissions(n: int) -> tuple[float, int]:
            headers = [{**JSON_HEADERS, "Idempotency-Key": uuid.uuid4().hex} for _ in range(n)]
            elapsed, calls = 0.0, 0
            for h in headers:
                empty_table()
                counter.reset()
                start = time.perf_counter()
                response = http.post("/api/cases", headers=h, body=body)
                elapsed += time.perf_counter() - start
                calls += counter.total
                if response.status_code != 201:
                    raise RuntimeError(f"a submission returned HTTP {response.status_code}: "
                                       f"{response.body[:300]!r}")
            return elapsed, calls

        def run_puts(n: int) -> tuple[float, int]:
            items = [put_item_for(i) for i in range(n)]
            elapsed = 0.0
            for item in items:
                empty_table()
                start = time.perf_counter()
                bare.put_item(TableName=TABLE, Item=item)
                elapsed += time.perf_counter() - start
            return elapsed, n

        def run_bare_pair(n: int) -> tuple[float, int]:
            transactions = [fresh_keys(transact) for _ in range(n)]
            elapsed = 0.0
            for items in transactions:
                empty_table()
                start = time.perf_counter()
                bare.update_item(**counter_update)
                bare.transact_write_items(TransactItems=items)
                elapsed += time.perf_counter() - start
            return elapsed, 2 * n

        loops: dict[str, Callable[[int], tuple[float, int]]] = {
            "submit": run_submissions, "put": run_puts, "bare": run_bare_pair,
        }
        for run in loops.values():  # warm-up, untimed
            run(5)
        rates: dict[str, list[float]] = {name: [] for name in loops}
        call_rates: list[float] = []
        order = list(loops)
        for r in range(rounds):
            for name in order[r % 3:] + order[: r % 3]:  # rotate who goes first
                gc.collect()
                elapsed, calls = loops[name](batch)
                rates[name].append(batch / elapsed)
                if name == "submit":
                    call_rates.append(calls / elapsed)
    sub, put, pair = rates["submit"], rates["put"], rates["bare"]
    put_ratios = [p / s for p, s in zip(put, sub, strict=True)]
    pair_ratios = [p / s for p, s in zip(pair, sub, strict=True)]
    print(f"  {rounds} rounds × {batch} requests per loop, loop order rotated each round; "
          f"only the requests are timed")
    print("  moto deep-copies the whole table for every item of a TransactWriteItems (cost "
          "grows with every partition ever written), so each request runs on a newly "
          "created, empty table (untimed)")
    print(f"  submissions/s   median {median(sub):7.1f}  range {spread(sub)}")
    print(f"  put_item/s      median {median(put):7.1f}  range {spread(put)}  "
          f"(case item, ~{put_bytes} bytes)")
    print(f"  bare pair/s     median {median(pair):7.1f}  range {spread(pair)}  "
          f"(UpdateItem + {len(transact)}-item TransactWriteItems, no app code)")
    print(f"  per-round put/submit ratios {spread(put_ratios, '{:.2f}')}, "
          f"bare-pair/submit {spread(pair_ratios, '{:.2f}')}")
    report.add("submissions/s (Chalice test client, moto)", f"{median(sub):.1f}")
    report.add("DynamoDB calls/s during submissions", f"{median(call_rates):.1f}")
    report.add(f"put_item/s (~{put_bytes} B item, same table)", f"{median(put):.1f}")
    ratio = median(put_ratios)
    report.judge("put_item rate ÷ submission rate", f"{ratio:.2f}×", f"≤ {TARGET_PUT_RATIO:g}×",
                 ratio <= TARGET_PUT_RATIO)
    report.add("bare same-2-calls rate ÷ submission rate", f"{median(pair_ratios):.2f}×")


# -- 3. import time --------------------------------------------------------------------

TIMED_IMPORT = "import time; t = time.perf_counter(); import {}; print(time.perf_counter() - t)"
APP_IMPORT = TIMED_IMPORT.format("app")
BASE_IMPORT = TIMED_IMPORT.format("chalice, boto3, pydantic")


# The lazy part of a cold start: what `import app` leaves to the first request (imports
# inside handlers, deferred pydantic models, the boto3 client). Through the Chalice test
# client against moto, so it does not depend on how chalicelib is laid out.
FIRST_REQUEST = """
import json, time, uuid
import boto3, chalice.test, moto
from local.table import create_table
with moto.mock_aws():
    create_table(boto3.session.Session().client("dynamodb"), {table!r})
    start = time.perf_counter()
    import app
    imported = time.perf_counter() - start
    with chalice.test.Client(app.app, stage_name="local", project_dir={root!r}) as client:
        took = []
        for _ in range(2):
            headers = {{"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex}}
            start = time.perf_counter()
            response = client.http.post("/api/cases", headers=headers, body={body!r})
            took.append(time.perf_counter() - start)
            assert response.status_code == 201, (response.status_code, response.body)
print(imported, took[0], took[1])
"""


def python(
    code: str, *flags: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, *flags, "-c", code], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, **(env or {})}, timeout=120, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"python -c {code!r} failed: {done.stderr.strip()[-500:]}")
    return done


def timed_imports(runs: int, env: dict[str, str] | None = None) -> tuple[list[float], list[float]]:
    app_times, base_times = [], []
    for i in range(runs):
        pair = [(APP_IMPORT, app_times), (BASE_IMPORT, base_times)]
        for code, into in pair if i % 2 == 0 else reversed(pair):
            into.append(float(python(code, env=env).stdout.strip().splitlines()[-1]))
    return app_times, base_times


def import_profile(statement: str) -> dict[str, tuple[int, int]]:
    """-X importtime: module → (self µs, cumulative µs)."""
    lines = python(statement, "-X", "importtime").stderr.splitlines()
    profile = {}
    for line in lines:
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|")
        profile[name.strip()] = (int(self_us), int(cumulative_us))
    return profile


def measure_imports(report: Report, runs: int, source_runs: int, first_runs: int) -> None:
    python(APP_IMPORT)  # warm-up: bytecode caches, file system cache
    python(BASE_IMPORT)
    app_t, base_t = timed_imports(runs)
    ratios = [a / b for a, b in zip(app_t, base_t, strict=True)]
    ratio = statistics.median(app_t) / statistics.median(base_t)
    print(f"  {runs} fresh interpreters each, alternating; cwd {ROOT}")
    print(f"  import app                      median {median(app_t) * 1000:6.1f} ms  "
          f"range {spread([t * 1000 for t in app_t])}")
    print(f"  import chalice, boto3, pydantic median {median(base_t) * 1000:6.1f} ms  "
          f"range {spread([t * 1000 for t in base_t])}")
    print(f"  ratio of medians {ratio:.2f}×, median of paired ratios {median(ratios):.2f}×")
    report.add("import app (cold-start proxy)", f"{median(app_t) * 1000:.0f} ms")
    report.add("import chalice, boto3, pydantic", f"{median(base_t) * 1000:.0f} ms")
    report.judge("app import ÷ baseline import", f"{ratio:.2f}×", f"≤ {TARGET_IMPORT_RATIO:g}×",
                 ratio <= TARGET_IMPORT_RATIO)
    if source_runs:
        # The deployment zip carries no .pyc and /var/task is read-only: on Lambda the
        # packaged modules are compiled at every cold start. An empty cache prefix with
        # bytecode writing off makes this interpreter compile everything from source.
        with tempfile.TemporaryDirectory(prefix="bench-nopyc-") as empty:
            nopyc = {"PYTHONPYCACHEPREFIX": empty, "PYTHONDONTWRITEBYTECODE": "1"}
            app_s, base_s = timed_imports(source_runs, env=nopyc)
        print(f"  without bytecode caches ({source_runs} runs each): app "
              f"{median(app_s) * 1000:.0f} ms, baseline {median(base_s) * 1000:.0f} ms, "
              f"{median(app_s) / median(base_s):.2f}×")
        report.add("same, compiled from source (no .pyc)",
                   f"{median(app_s) * 1000:.0f} / {median(base_s) * 1000:.0f} ms "
                   f"= {median(app_s) / median(base_s):.2f}×")

    if first_runs:
        code = FIRST_REQUEST.format(table=TABLE, root=str(ROOT), body=json.dumps(COMPLAINT))
        runs = [[float(x) for x in python(code).stdout.split()[-3:]] for _ in range(first_runs)]
        imported, first, second = (median([r[i] * 1000 for r in runs]) for i in range(3))
        print(f"  import app + first POST /api/cases (fresh interpreter, moto, {first_runs} runs):"
              f" {imported:.0f} + {first:.0f} ms; a second POST takes {second:.0f} ms, so "
              f"the first request carries {first - second:.0f} ms of cold-start work (lazy "
              f"imports, model builds, the boto3 client); moto and chalice.test are imported "
              f"before the clock starts, so boto3/botocore are already loaded")
        report.add("import app + first submission (moto)",
                   f"{imported:.0f} + {first:.0f} ms (2nd: {second:.0f} ms)")

    loaded = set(json.loads(python("import sys, json, app; print(json.dumps(sorted(sys.modules)))")
                            .stdout.strip().splitlines()[-1]))
    app_profile = import_profile("import app")
    base_profile = import_profile("import chalice, boto3, pydantic")

    def cost(module: str) -> str:
        times = app_profile.get(module)
        return f"{times[1] / 1000:.1f} ms" if times else "?"

    unwanted = [m for m in SHOULD_NOT_IMPORT if m in loaded]
    watched = [m for m in WATCH_IMPORT if m in loaded]
    print(f"  modules after import app: {len(loaded)}")
    print("  checked, should not be imported: " + ", ".join(
        f"{m} {'PRESENT' if m in loaded else 'absent'}" for m in SHOULD_NOT_IMPORT))
    print("  present, for information: " + (", ".join(f"{m} ({cost(m)})" for m in watched)
                                            or "none"))
    extra: Counter[str] = Counter()
    for module, (self_us, _) in app_profile.items():
        if module not in base_profile:
            extra[module.split(".")[0]] += self_us
    print("  import time beyond the baseline, by top-level package (self time, one run): "
          + ", ".join(f"{pkg} {us / 1000:.1f} ms" for pkg, us in extra.most_common(8)))
    slowest = sorted(((v[0], m) for m, v in app_profile.items() if m not in base_profile),
                     reverse=True)[:5]
    print("  slowest single modules beyond the baseline (self time): "
          + ", ".join(f"{m} {us / 1000:.1f} ms" for us, m in slowest))
    report.add("heavy modules imported by app (unwanted)", ", ".join(unwanted) or "none",
               "none", "target met" if not unwanted else "MISSED")
    report.add("also imported by app", ", ".join(watched) or "none")


# -- 4. deployment package -------------------------------------------------------------


def package(into: Path) -> None:
    chalice = Path(sys.executable).with_name("chalice")
    env = {
        **os.environ,
        **FAKE_AWS,
        # Packaging needs no AWS at all; should anything try, it fails locally.
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    }
    command = [str(chalice), "package", "--stage", "dev",
               "--merge-template", ".chalice/resources.json", str(into)]
    print(f"  running: {' '.join(command[1:])} (cwd {ROOT})", flush=True)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    print(f"  chalice package took {time.perf_counter() - start:.1f} s")
    if done.returncode != 0:
        raise RuntimeError(f"exit {done.returncode}: "
                           f"{(done.stderr or done.stdout).strip()[-800:]}")


def measure_package(report: Report, package_dir: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-package-") as tmp:
        if package_dir is not None and (package_dir / "deployment.zip").is_file():
            where = package_dir
            print(f"  reusing {where / 'deployment.zip'} (not rebuilt)")
        else:
            if package_dir is not None:
                print(f"  {package_dir} holds no deployment.zip; packaging into a temporary dir")
            where = Path(tmp) / "package"
            try:
                package(where)
            except (RuntimeError, subprocess.TimeoutExpired, OSError) as error:
                report.broke("deployment.zip (chalice package)", str(error))
                return
        archive = where / "deployment.zip"
        size = archive.stat().st_size
        with zipfile.ZipFile(archive) as zipped:
            infos = zipped.infolist()
        unpacked = sum(i.file_size for i in infos)
        by_top: Counter[str] = Counter()
        for info in infos:
            by_top[info.filename.split("/")[0]] += info.compress_size
        tops = {name.split("/")[0] for name in (i.filename for i in infos)}
        dev_only = [p for p in DEV_ONLY_IN_ZIP if p in tops]
        mb = size / 1e6
        print(f"  deployment.zip {mb:.2f} MB ({size / 2**20:.2f} MiB), {len(infos)} files, "
              f"{unpacked / 1e6:.1f} MB unpacked")
        print("  largest parts (compressed): "
              + ", ".join(f"{n} {b / 1e6:.2f} MB" for n, b in by_top.most_common(6)))
        print(f"  dev-only packages in the zip: {', '.join(dev_only) or 'none'}")
        report.judge("deployment.zip size", f"{mb:.2f} MB", f"≤ {TARGET_ZIP_MB:g} MB",
                     mb <= TARGET_ZIP_MB)
        if dev_only:
            report.add("dev-only packages in deployment.zip", ", ".join(dev_only))


# -- main ------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="throughput rounds (default 9)")
    parser.add_argument("--batch", type=int, default=30,
                        help="requests per loop per round (default 30)")
    parser.add_argument("--import-runs", type=int, default=10,
                        help="fresh interpreters per import measurement (default 10)")
    parser.add_argument("--source-import-runs", type=int, default=3,
                        help="runs of the no-bytecode import variant, 0 to skip (default 3)")
    parser.add_argument("--first-request-runs", type=int, default=5,
                        help="runs of import app + first submission, 0 to skip (default 5)")
    parser.add_argument("--package-dir", type=Path, default=None,
                        help="reuse the deployment.zip in this dir (e.g. build/package) "
                        "instead of running chalice package")
    parser.add_argument("--skip-package", action="store_true", help="skip figure 4")
    args = parser.parse_args()
    if args.package_dir is not None and not args.package_dir.is_absolute():
        args.package_dir = (Path.cwd() / args.package_dir).resolve()

    started = time.perf_counter()
    report = Report()
    print(f"service desk intake benchmark — python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, moto in-process, no AWS")

    def guarded(title: str, step: Callable[[], None]) -> None:
        figures.guarded(report, title, step)

    with moto_environment() as env:

        def calls() -> None:
            measure_calls(report, env, "local", TABLE, judged=True)
            measure_calls(report, env, "dev", DEV_TABLE, judged=False)

        guarded("1. DynamoDB calls per request", calls)
        guarded("2. submission throughput vs put_item (moto)",
                lambda: measure_throughput(report, env, args.rounds, args.batch))
    guarded("3. import time of app.py (cold-start proxy)",
            lambda: measure_imports(report, args.import_runs, args.source_import_runs,
                                    args.first_request_runs))
    if args.skip_package:
        report.add("deployment.zip size", "skipped (--skip-package)")
    else:
        guarded("4. deployment package size",
                lambda: measure_package(report, args.package_dir))

    return figures.summary(report, time.perf_counter() - started)


if __name__ == "__main__":
    sys.exit(main())
