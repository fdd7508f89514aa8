"""Command line for the people who run the desk.

    python -m chalicelib.cli --local staff add ann --name "Ann Li" --role agent
    python -m chalicelib.cli --local staff list
    python -m chalicelib.cli --local staff issue-token ann      # the old token stops working
    python -m chalicelib.cli --local staff revoke ann
    python -m chalicelib.cli check-config --stage prod
    python -m chalicelib.cli --local report monthly 2026-10 --out october.xlsx
    python -m chalicelib.cli --local report daily 2026-11-21
    python -m chalicelib.cli --local sweep                       # fire due timers now
    python -m chalicelib.cli --local units import units.xlsx [--dry-run]
    python -m chalicelib.cli --local units show SN-1001
    python -m chalicelib.cli --local units update SN-1001 --dealer east --warranty-months 18
    python -m chalicelib.cli --local units retire SN-1001 --reason "scrapped after a fire"
    python -m chalicelib.cli units template units.xlsx         # an empty registry workbook
    python -m chalicelib.cli --local visits                      # open the planned visits due now
    python -m chalicelib.cli --local sheets rebuild [Parts]      # lay out and refill the sheet
    python -m chalicelib.cli --local sheets check                # sheet vs store: differences
    python -m chalicelib.cli --local sheets sync | reconcile     # the scheduled jobs, by hand

`--local` talks to the running local stack (`make run`); without it the table named by
SERVICE_DESK_TABLE_NAME in the AWS account of your environment is used. A token is shown
once, when it is issued; only its hash is stored.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOCAL_STACK_FILE = ROOT / ".local-data" / "stack.json"


def stage_environment(stage: str) -> dict[str, str]:
    """The environment variables .chalice/config.json gives a stage, as chalice does."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    if stage not in config["stages"]:
        raise SystemExit(f"no stage '{stage}' in .chalice/config.json")
    env = dict(config.get("environment_variables", {}))
    env.update(config["stages"][stage].get("environment_variables", {}))
    return env


def _use_local_stack() -> None:
    if not LOCAL_STACK_FILE.exists():
        raise SystemExit("the local stack is not running: start it with `make run`")
    os.environ.update(json.loads(LOCAL_STACK_FILE.read_text())["environment"])


def _check_config(args: argparse.Namespace) -> int:
    from chalicelib import bootstrap
    from chalicelib.domain.policies import PoliciesError
    from chalicelib.settings import SettingsError

    if args.stage:
        os.environ.update(stage_environment(args.stage))
    bootstrap.reset()
    try:
        bootstrap.check_configuration()
    except (SettingsError, PoliciesError) as error:
        print(error, file=sys.stderr)
        return 1
    print("settings and policies are valid")
    return 0


def _staff(args: argparse.Namespace) -> int:
    from chalicelib import bootstrap
    from chalicelib.domain.staff import Role
    from chalicelib.services import staff_desk
    from chalicelib.services.ports import TokenChanged

    store = bootstrap.case_store()
    now = datetime.now(UTC)
    try:
        if args.command == "add":
            member, token = staff_desk.add_staff(
                store, staff_id=args.staff_id, name=args.name, role=Role(args.role),
                email=args.email, now=now, language=args.language,
            )
            print(f"added {member.staff_id} ({member.role.value}); their token (shown once):")
            print(token)
        elif args.command == "issue-token":
            print(staff_desk.issue_token(store, args.staff_id, now))
        elif args.command == "revoke":
            staff_desk.revoke_token(store, args.staff_id, now)
            print(f"{args.staff_id}'s token no longer works")
        else:
            for member in store.list_staff():
                state = "active" if member.active else "revoked"
                print(f"{member.staff_id:20} {member.role.value:17} {state:8} {member.name}")
    except TokenChanged:
        print(f"{args.staff_id}'s token was changed at the same moment; run it again",
              file=sys.stderr)
        return 1
    except staff_desk.UnknownStaff:
        print(f"no member of staff '{args.staff_id}'", file=sys.stderr)
        return 1
    except store.client.exceptions.TransactionCanceledException:
        print(f"'{args.staff_id}' is already taken", file=sys.stderr)
        return 1
    return 0


def _report(args: argparse.Namespace) -> int:
    from chalicelib import bootstrap
    from chalicelib.services import reports
    from chalicelib.settings import get_policies, get_settings

    store, settings, policies = bootstrap.case_store(), get_settings(), get_policies()
    if args.command == "daily":
        try:
            day = datetime.strptime(args.day, "%Y-%m-%d").date()
        except ValueError:
            print(f"not a day: {args.day!r} (write it as YYYY-MM-DD)", file=sys.stderr)
            return 2
        summary = reports.build_daily_summary(store, policies, day)
        print("\n".join(summary.lines(settings.default_language.value)))
        return 0
    try:
        month = reports.parse_month(args.month)
    except reports.BadMonth as bad:
        print(bad, file=sys.stderr)
        return 2
    files = bootstrap.report_files()
    if args.send:
        sent = reports.send_monthly_report(
            store, files, settings, policies, datetime.now(UTC), month=month
        )
        print(f"{sent.name}: " + (f"queued for {sent.recipients} recipient(s)" if sent.sent
                                  else f"not sent ({sent.reason})"))
    stats, body = reports.build_monthly_workbook(store, files, settings, policies, month)
    out = Path(args.out or f"service-report-{month:%Y-%m}.xlsx")
    out.write_bytes(body)
    print(f"{out}: {stats.opened} opened, {stats.resolved} resolved, {stats.closed} closed "
          f"in {month:%Y-%m}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from chalicelib import bootstrap
    from chalicelib.services.sweep import sweep_due_timers
    from chalicelib.settings import get_policies, get_settings

    report = sweep_due_timers(
        bootstrap.case_store(), get_settings(), get_policies(), datetime.now(UTC)
    )
    print(json.dumps(report.as_dict()))
    return 0


def _units(args: argparse.Namespace) -> int:
    from chalicelib.adapters import unit_workbook

    if args.command == "template":
        Path(args.file).write_bytes(unit_workbook.template())
        print(f"{args.file}: the registry's columns, and a sheet explaining each")
        return 0

    from chalicelib import bootstrap
    from chalicelib.services import units as registry
    from chalicelib.settings import get_policies

    store, policies = bootstrap.unit_store(), get_policies()
    if args.command == "show":
        view = registry.unit_view(store, policies, args.serial_no)
        if view is None:
            print(f"no unit {args.serial_no} in the registry", file=sys.stderr)
            return 1
        _print_unit(view)
        return 0
    if args.command in {"update", "retire"}:
        return _change_unit(args, store, policies)

    from tqdm import tqdm

    try:
        sheet = unit_workbook.read_units(Path(args.file))
    except (unit_workbook.WorkbookError, OSError) as bad:
        print(f"{args.file}: {bad}", file=sys.stderr)
        return 2
    now = datetime.now(UTC)
    # The bar goes to stderr (shown on a terminal only), the summary to stdout.
    with tqdm(total=len(sheet.rows), unit="row", file=sys.stderr, disable=None) as bar:
        report = registry.import_units(
            store, policies, sheet.rows, now, registry.company_today(policies, now),
            progress=bar.update, dry_run=args.dry_run, warnings=sheet.warnings,
        )
    for warning in report.warnings:
        print(f"{args.file}: warning: {warning}")
    done = "would be registered (dry run)" if args.dry_run else "registered"
    print(f"{args.file}: {len(report.registered)} {done} with {report.visits_planned} planned "
          f"visits, {len(report.rejected)} rejected")
    for rejected in report.rejected:
        print(f"row {rejected.row}" + (f" ({rejected.serial_no})" if rejected.serial_no else ""))
        for problem in rejected.problems:
            print(f"  {problem.field}: {problem.message}")
    return 1 if report.rejected else 0


def _print_unit(view: Any) -> None:
    for name, value in view.unit.model_dump(mode="json").items():
        if isinstance(value, dict):
            value = ", ".join(f"{key} {item}" for key, item in value.items())
        if value is not None:
            print(f"{name:21} {value}")
    ends = view.warranty_ends_on
    print(f"{'warranty_ends_on':21} {ends or 'by operating hours only'}")
    visits = ", ".join(day.isoformat() for day in view.planned_visits)
    print(f"{'planned_visits':21} {visits or 'none to come'}")
    print(f"{'version':21} {view.version}")


def _change_unit(args: argparse.Namespace, store: Any, policies: Any) -> int:
    """units update / units retire: as the staff API, without its role checks (whoever runs
    the command line has the table itself)."""
    import getpass

    from chalicelib.domain.units import EDITABLE_FIELDS
    from chalicelib.services import units as registry

    now = datetime.now(UTC)
    try:
        if args.command == "update":
            changes = {
                name: registry.typed_value(name, getattr(args, name))
                for name in EDITABLE_FIELDS if hasattr(args, name)
            }
            view = registry.update_unit(
                store, policies, args.serial_no, changes, now, role=None,
                expected_version=args.version,
            )
        else:
            by = f"cli:{args.by or getpass.getuser()}"
            view = registry.retire_unit(
                store, policies, args.serial_no, reason=args.reason, by=by, now=now,
                role=None, expected_version=args.version,
            )
    except registry.UnitRejected as rejected:
        for problem in rejected.problems:
            print(f"{problem.field}: {problem.message}", file=sys.stderr)
        return 2
    except (registry.UnitNotFound, registry.UnitRetired, registry.StaleUnit) as refused:
        print(refused, file=sys.stderr)
        return 1
    _print_unit(view)
    return 0


def _visits(args: argparse.Namespace) -> int:
    from chalicelib import bootstrap
    from chalicelib.services.units import open_planned_visits
    from chalicelib.settings import get_policies, get_settings

    report = open_planned_visits(
        bootstrap.unit_store(), bootstrap.case_store(), get_settings(), get_policies(),
        datetime.now(UTC),
    )
    print(json.dumps(report.as_dict()))
    return 0


def _sheets(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from chalicelib import bootstrap
    from chalicelib.services import sheets
    from chalicelib.settings import SettingsError

    try:
        desk = bootstrap.sheet_desk()
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 1
    if desk is None:
        print("no sheet is configured: set SERVICE_DESK_SHEET_ID and a service account, or "
              "SERVICE_DESK_SHEETS_WORKBOOK (see sheets/README.md)", file=sys.stderr)
        return 1
    try:
        if args.command == "rebuild":
            case_ids = desk.store.sheet_candidates()
            views = [args.view] if args.view else None
            with tqdm(total=len(case_ids), unit="case", file=sys.stderr, disable=None) as bar:
                report = sheets.rebuild(desk, case_ids, progress=bar.update, views=views)
            if report.edits_applied or report.edits_refused:
                print(f"taken in first: {report.edits_applied} edit(s) applied, "
                      f"{report.edits_refused} refused")
            for note in report.notes:
                print(note)
            print(f"rebuilt {args.view or 'every tab'}: {report.rows_added} rows of "
                  f"{len(case_ids)} cases in {report.requests} requests")
            return 0
        if args.command == "check":
            differences = sheets.check(desk, desk.store.sheet_candidates())
            for d in differences:
                detail = f": sheet {d.sheet!r}, store {d.store!r}" if d.sheet or d.store else ""
                print(f"{d.view:10} {d.case_number or d.row_id:24} {d.what}{detail}")
            print(f"{len(differences)} difference(s)" if differences
                  else "the sheet agrees with the store")
            return 1 if differences else 0
        run = sheets.sync if args.command == "sync" else sheets.reconcile
        result = run(desk, limit=desk.settings.sheets_rows_per_sync)
        print(json.dumps(result.as_dict()))
        for note in result.notes:
            print(note)
        return 1 if result.unavailable else 0
    except sheets.SheetUnavailable as error:
        print(f"the sheet is unreachable: {error}", file=sys.stderr)
        return 1


# `units update` options: the fields staff may correct (domain/units.py EDITABLE_FIELDS).
UNIT_OPTIONS = {
    "model": "the model",
    "product_line": "the product line (picks the response promises)",
    "customer_name": "the customer's name",
    "customer_email": "the customer's e-mail (the visits' cases go there)",
    "customer_phone": "the customer's phone",
    "address": "where the unit stands",
    "region": "the customer's region",
    "dealer": "a dealer id of the policies ([field_service.dealers])",
    "sold_on": "the sale date (YYYY-MM-DD, YYYY/MM/DD or YYYY年M月D日)",
    "accepted_on": "the acceptance date (验收): the warranty counts from here",
    "operating_hours": "the hour meter's reading (a correction may lower it)",
    "hours_read_on": "when the hour meter was read",
    "warranty_months": "warranty months",
    "warranty_hours": "warranty operating hours (whichever ends first)",
    "maintenance_contract": "yes / no (是 / 否)",
}


def main(argv: list[str] | None = None) -> int:
    from chalicelib.domain.sheet_views import VIEWS
    from chalicelib.domain.staff import Role
    from chalicelib.domain.units import EDITABLE_FIELDS

    parser = argparse.ArgumentParser(
        prog="python -m chalicelib.cli", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--local", action="store_true", help="use the running local stack")
    commands = parser.add_subparsers(dest="area", required=True)

    check = commands.add_parser("check-config", help="validate settings and policies file")
    check.add_argument("--stage", help="take the environment of this .chalice stage")
    check.set_defaults(run=_check_config)

    staff = commands.add_parser("staff", help="staff and their API tokens")
    staff_commands = staff.add_subparsers(dest="command", required=True)
    add = staff_commands.add_parser("add", help="add a member of staff and issue a token")
    add.add_argument("staff_id", help="short login-like id, e.g. ann or wang.fang")
    add.add_argument("--name", required=True)
    add.add_argument("--role", required=True, choices=[role.value for role in Role])
    add.add_argument("--email", help="their e-mail; also how the sheet knows who edited it")
    add.add_argument("--language", choices=["zh", "en"],
                     help="the language of their sheet notes (default: the company's)")
    for name, text in (("issue-token", "issue a new token (the old one stops working)"),
                       ("revoke", "revoke someone's token")):
        command = staff_commands.add_parser(name, help=text)
        command.add_argument("staff_id")
    staff_commands.add_parser("list", help="list the staff")
    staff.set_defaults(run=_staff)

    report = commands.add_parser("report", help="daily summary and monthly statistics")
    report_commands = report.add_subparsers(dest="command", required=True)
    daily = report_commands.add_parser("daily", help="print a day's summary (local day)")
    daily.add_argument("day", help="YYYY-MM-DD")
    monthly = report_commands.add_parser(
        "monthly", help="rebuild a month's statistics workbook from the cases"
    )
    monthly.add_argument("month", help="YYYY-MM")
    monthly.add_argument("--out", help="where to write the .xlsx (default: "
                         "service-report-YYYY-MM.xlsx here)")
    monthly.add_argument("--send", action="store_true",
                         help="also e-mail it to the managers, unless it was sent already")
    report.set_defaults(run=_report)

    sweep = commands.add_parser("sweep", help="fire the timers due now (as the schedule does)")
    sweep.set_defaults(run=_sweep)

    units = commands.add_parser("units", help="the registry of sold units (设备档案)")
    units_commands = units.add_subparsers(dest="command", required=True)
    load = units_commands.add_parser(
        "import", help="register the units of a workbook (.xlsx) with their planned visits"
    )
    load.add_argument("file")
    load.add_argument("--dry-run", action="store_true",
                      help="check every row and report, register nothing")
    show = units_commands.add_parser("show", help="a unit, its warranty end and planned visits")
    show.add_argument("serial_no")
    blank = units_commands.add_parser("template", help="write an empty registry workbook")
    blank.add_argument("file")
    update = units_commands.add_parser(
        "update", help="correct a unit (its visits to come re-planned when its dates or "
        "warranty terms change)",
        description="Correct the fields given, validated as at registration; an empty value "
        "('') clears an optional field. When the sale or acceptance date or the warranty "
        "terms change, the visits still to come (after today) are planned afresh in the same "
        "write. Exit 2 with every bad field, 1 for an unknown, retired or changed unit.",
    )
    update.add_argument("serial_no")
    for name in EDITABLE_FIELDS:
        update.add_argument(f"--{name.replace('_', '-')}", dest=name, metavar="VALUE",
                            default=argparse.SUPPRESS, help=UNIT_OPTIONS.get(name))
    update.add_argument("--version", type=int,
                        help="the version you read (units show): refused if it changed since")
    retire = units_commands.add_parser(
        "retire", help="retire a unit: kept for its history, its planned visits removed",
        description="Mark the unit retired (who, when, why): it stays in the registry, its "
        "planned visits not opened yet are removed, and it opens no more.",
    )
    retire.add_argument("serial_no")
    retire.add_argument("--reason", required=True, help="why: scrapped, sold on, returned, …")
    retire.add_argument("--by", help="who retires it (default: your login name)")
    retire.add_argument("--version", type=int,
                        help="the version you read (units show): refused if it changed since")
    units.set_defaults(run=_units)

    visits = commands.add_parser(
        "visits", help="open the planned maintenance visits due now (as the schedule does)"
    )
    visits.set_defaults(run=_visits)

    sheet = commands.add_parser("sheets", help="the staff's spreadsheet (sheets/README.md)")
    sheet_commands = sheet.add_subparsers(dest="command", required=True)
    rebuild = sheet_commands.add_parser(
        "rebuild", help="take in pending edits, then lay every tab (or one) out afresh and "
                        "fill it from the store (progress bar)")
    rebuild.add_argument("view", nargs="?", choices=[view.name for view in VIEWS],
                         help="only this tab (default: all five)")
    sheet_commands.add_parser("check", help="print every difference between sheet and store "
                              "(exit 1 if any)")
    sheet_commands.add_parser("sync", help="write the rows of changed cases now")
    sheet_commands.add_parser("reconcile", help="take in edits no webhook brought, now")
    sheet.set_defaults(run=_sheets)

    args = parser.parse_args(argv)
    if args.local:
        _use_local_stack()
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
