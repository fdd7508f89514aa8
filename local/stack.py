"""The local stack behind `make run`: the whole service desk on one machine.

- a moto server stands in for AWS (DynamoDB, SES, S3 for the customers' photos) on a
  free loopback port: the browser posts photos to it and loads them from it directly;
- `chalice local --no-autoreload --stage local` serves the app on http://127.0.0.1:8000;
- a small scheduler fires the app's @app.schedule functions (chalice local does not),
  which drains the outbox: e-mails go to moto's SES and are also written as .eml files;
- the table is snapshotted to <data-dir>/dynamodb.json every few seconds and on exit, and
  restored on start, so cases survive a restart (moto itself keeps nothing); the photos
  are mirrored into <data-dir>/photos/ the same way.

Ctrl-C (or SIGTERM) stops everything it started.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TABLE = "service-desk-local"
PHOTO_BUCKET = "service-desk-photos-local"
MAIL_FROM = "service@example.com"
REGION = "us-east-1"


def log(message: str) -> None:
    print(f"[local] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


class Snapshot:
    """The table's items as DynamoDB JSON in one file, written atomically when changed."""

    def __init__(self, client: Any, table: str, path: Path) -> None:
        self.client, self.table, self.path = client, table, path
        self._last_digest = ""

    def restore(self) -> int:
        if not self.path.exists():
            return 0
        items = json.loads(self.path.read_text())["items"]
        for start in range(0, len(items), 25):
            requests: dict[str, Any] = {
                self.table: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
            }
            while requests:
                response = self.client.batch_write_item(RequestItems=requests)
                requests = response.get("UnprocessedItems") or {}
        self._last_digest = self._digest(items)
        return len(items)

    def save(self) -> bool:
        items: list[dict[str, Any]] = []
        for page in self.client.get_paginator("scan").paginate(TableName=self.table):
            items.extend(page["Items"])
        items.sort(key=lambda item: (item["PK"]["S"], item["SK"]["S"]))
        digest = self._digest(items)
        if digest == self._last_digest:
            return False
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"table": self.table, "items": items}, ensure_ascii=False))
        temporary.replace(self.path)
        self._last_digest = digest
        return True

    @staticmethod
    def _digest(items: list[dict[str, Any]]) -> str:
        return hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()


def scheduled_functions(tick: float) -> list[tuple[str, float, Callable[..., Any]]]:
    """The app's @app.schedule functions with how often to fire them here: their own rate,
    but at least every `tick` seconds so that local e-mails do not wait a minute."""
    from chalice.app import Cron, Rate, ScheduledEventConfig

    import app as app_module

    seconds = {Rate.MINUTES: 60, Rate.HOURS: 3600, Rate.DAYS: 86400}
    found = []
    for source in app_module.app.event_sources:
        if not isinstance(source, ScheduledEventConfig):
            continue
        expression = source.schedule_expression
        if isinstance(expression, Rate):
            period = min(float(expression.value * seconds[expression.unit]), tick)
        elif isinstance(expression, Cron | str):
            log(f"schedule {source.name} ({expression}) is not a rate; firing it every {tick}s")
            period = tick
        found.append((source.name, period, getattr(app_module, source.name)))
    return found


def scheduled_event(name: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": f"local-{name}-{time.time_ns()}",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:123456789012:rule/{name}"],
        "detail": {},
    }


def wait_until_serving(
    url: str, process: subprocess.Popen[bytes], timeout: float, stopping: threading.Event
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stopping.is_set():
        if process.poll() is not None:
            raise SystemExit(f"chalice local exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            stopping.wait(0.2)
    if not stopping.is_set():
        raise SystemExit(f"chalice local did not answer on {url} within {timeout:.0f}s")


def die_with_parent() -> None:
    """In the child: if the stack itself is killed (kill -9), the kernel stops chalice too,
    so it never lingers holding the port."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


LOCAL_EDITOR = "local-desk"


def ensure_sheet_editor(staff_id: str) -> None:
    """The workbook's edits are made as this member of staff (there is no Apps Script to
    say who edited): added, as a supervisor, when the table does not have them yet."""
    from chalicelib import bootstrap
    from chalicelib.domain.staff import Role
    from chalicelib.services.staff_desk import add_staff

    store = bootstrap.case_store()
    if store.get_staff(staff_id) is not None:
        log(f"edits saved in the workbook are made as staff member '{staff_id}'")
        return
    add_staff(store, staff_id=staff_id, name="Local desk", role=Role.SUPERVISOR, email=None,
              now=datetime.now(UTC))
    log(f"added staff member '{staff_id}' (supervisor): edits saved in the workbook are "
        f"made as them (SERVICE_DESK_SHEETS_DEFAULT_EDITOR names another)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--data-dir", type=Path, default=ROOT / ".local-data",
        help="where the table snapshot and the e-mails (.eml) are kept",
    )
    parser.add_argument(
        "--tick", type=float, default=3.0,
        help="seconds between scheduler runs and snapshots (default 3)",
    )
    args = parser.parse_args(argv)

    if not port_is_free(args.host, args.port):
        log(f"port {args.port} on {args.host} is in use: stop what runs there, or use --port")
        return 2
    data_dir: Path = args.data_dir.resolve()
    mail_dir = data_dir / "mail"
    mail_dir.mkdir(parents=True, exist_ok=True)

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not one line per AWS call

    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()

    base_url = f"http://{args.host}:{args.port}"
    from chalicelib.cli import stage_environment

    env = {
        **stage_environment("local"),
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
        "SERVICE_DESK_TABLE_NAME": TABLE,
        "SERVICE_DESK_PHOTO_BUCKET": PHOTO_BUCKET,
        "SERVICE_DESK_MAIL_FROM": MAIL_FROM,
        "SERVICE_DESK_MAIL_DROP_DIR": str(mail_dir),
        "SERVICE_DESK_PUBLIC_BASE_URL": base_url,
        "SERVICE_DESK_SERVICE_CENTRE_EMAIL": "service-centre@example.com",
        # No Google here: the staff's views are mirrored into a workbook you can open.
        # Edits typed there (no Apps Script fills "edited by") are taken as this staff
        # member's; ensure_sheet_editor adds them if the table does not have them.
        "SERVICE_DESK_SHEETS_WORKBOOK": os.environ.get(
            "SERVICE_DESK_SHEETS_WORKBOOK", str(ROOT / "sheets" / "service-desk.xlsx")
        ),
        "SERVICE_DESK_SHEETS_DEFAULT_EDITOR": os.environ.get(
            "SERVICE_DESK_SHEETS_DEFAULT_EDITOR", ""
        ) or LOCAL_EDITOR,
        # An example company with dealers and a supplier, to try the field-service flow.
        "SERVICE_DESK_POLICIES_FILE": os.environ.get(
            "SERVICE_DESK_POLICIES_FILE", "policies/example-forklifts.toml"
        ),
    }
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update(env)

    import boto3

    sys.path.insert(0, str(ROOT))
    from chalicelib import bootstrap
    from chalicelib.domain.policies import PoliciesError
    from chalicelib.settings import SettingsError
    from local.photos import PhotoSnapshot, create_bucket
    from local.table import create_table

    try:  # a bad setting or policies file stops here, with what is wrong
        bootstrap.check_configuration()
    except (SettingsError, PoliciesError) as error:
        moto.stop()
        log(str(error))
        return 2

    dynamodb = boto3.client("dynamodb")
    create_table(dynamodb, TABLE)
    boto3.client("ses").verify_email_identity(EmailAddress=MAIL_FROM)
    snapshot = Snapshot(dynamodb, TABLE, data_dir / "dynamodb.json")
    restored = snapshot.restore()
    log(f"moto on 127.0.0.1:{moto_port}; restored {restored} items from {snapshot.path}")
    s3 = boto3.client("s3")
    create_bucket(s3, PHOTO_BUCKET)
    photos = PhotoSnapshot(s3, PHOTO_BUCKET, data_dir / "photos")
    log(f"restored {photos.restore()} photos from {photos.folder}")
    ensure_sheet_editor(env["SERVICE_DESK_SHEETS_DEFAULT_EDITOR"])
    # For `python -m chalicelib.cli --local …` (staff tokens) while the stack runs.
    stack_file = data_dir / "stack.json"
    stack_file.write_text(json.dumps({"environment": env, "url": base_url}))

    stopping = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stopping.set()

    # Ctrl-C, kill, or the terminal closing: all stop the stack the same way.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, request_stop)

    chalice = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "chalice"), "local", "--no-autoreload",
            "--stage", "local", "--host", args.host, "--port", str(args.port),
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        start_new_session=True,  # its own process group: we stop it, Ctrl-C does not race us
        preexec_fn=die_with_parent,
    )
    log(f"chalice local pid {chalice.pid}")
    try:
        wait_until_serving(f"{base_url}/api/openapi.json", chalice, 60, stopping)
        if stopping.is_set():
            return 0
        schedules = scheduled_functions(args.tick)
        last_fired = dict.fromkeys((name for name, _, _ in schedules), 0.0)
        log(f"service desk ready on {base_url}/  (e-mails: {mail_dir})  Ctrl-C stops")
        while not stopping.wait(min([args.tick] + [period for _, period, _ in schedules])):
            if chalice.poll() is not None:
                log(f"chalice local exited with code {chalice.returncode}")
                return 1
            for name, period, handler in schedules:
                if time.monotonic() - last_fired[name] >= period:
                    last_fired[name] = time.monotonic()
                    try:
                        result = handler(scheduled_event(name), None)
                    except Exception as error:  # keep the stack up; the next tick retries
                        log(f"schedule {name} failed: {error!r}")
                    else:
                        if result and any(result.values()):
                            log(f"{name}: {result}")
            snapshot.save()
            photos.save()
        return 0
    finally:
        stop_process(chalice)
        try:
            snapshot.save()
            photos.save()
            log(f"saved {snapshot.path} and {photos.folder}")
        finally:
            stack_file.unlink(missing_ok=True)
            moto.stop()
            log("stopped")


if __name__ == "__main__":
    sys.exit(main())
