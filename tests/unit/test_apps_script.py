"""The Apps Script of the sheet (sheets/edits.gs) against the webhook contract.

The script is run under node with small stand-ins for the Apps Script services
(SpreadsheetApp, UrlFetchApp, Utilities, PropertiesService, Session, ScriptApp); the
stand-in of Utilities.computeHmacSha256Signature uses node's crypto and returns signed bytes
(-128..127) as Apps Script does. What the script sends is checked here in Python against the
server's side of the contract: the signature is recomputed with `hmac`, the body parsed with
`json`. Without node those tests are skipped; the static checks at the end always run.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "sheets" / "edits.gs"
MANIFEST = ROOT / "sheets" / "appsscript.json"

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(
    NODE is None,
    reason="node is not installed: the Apps Script cannot be run here "
    "(the static checks of edits.gs still run)",
)

VIEWS = ["Cases", "Follow-ups", "Parts", "Refunds", "Overdue"]
SYSTEM_HEADERS = ["case id", "row", "version", "edited by", "sync note"]
BASE_URL = "https://abc123.execute-api.eu-central-1.amazonaws.com/api"
SECRET = "0123456789abcdef0123456789abcdef-test-secret"
SPREADSHEET_ID = "1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"

# Cases: visible columns first, the hidden ones mixed in (columns are found by header text).
CASES_HEADER = [
    "case number", "case id", "status", "row", "version", "owner", "note", "edited by",
    "sync note",
]
COL = {name: index + 1 for index, name in enumerate(CASES_HEADER)}

# The stand-ins. Everything the script does to the outside world is recorded in `events`,
# in order, and printed as JSON with the scenario's results.
HARNESS = r"""
'use strict';
const fs = require('fs');
const vm = require('vm');
const crypto = require('crypto');

const scenario = JSON.parse(fs.readFileSync(0, 'utf8'));
const events = [];
const logs = [];
const alerts = [];
const menus = [];
const props = Object.assign({}, scenario.props || {});
const responses = (scenario.responses || []).slice();
const prompts = (scenario.prompts || []).slice();
const alertAnswers = (scenario.alert_answers || []).slice();

function cellText(v) { return v === undefined || v === null ? '' : v; }

function makeSheet(name, grid, spreadsheet) {
  const sheet = {
    getName: () => name,
    getParent: () => spreadsheet,
    getLastRow: () => {
      for (let r = grid.length; r >= 1; r--) {
        if ((grid[r - 1] || []).some((v) => cellText(v) !== '')) return r;
      }
      return 0;
    },
    getLastColumn: () => {
      let last = 0;
      grid.forEach((row) => row.forEach((v, i) => {
        if (cellText(v) !== '') last = Math.max(last, i + 1);
      }));
      return last;
    },
    getRange: (row, col, numRows, numCols) =>
      makeRange(sheet, grid, row, col, numRows || 1, numCols || 1),
  };
  return sheet;
}

function makeRange(sheet, grid, row, col, numRows, numCols) {
  if (row < 1 || col < 1 || numRows < 1 || numCols < 1) throw new Error('bad range');
  return {
    getSheet: () => sheet,
    getRow: () => row,
    getColumn: () => col,
    getLastRow: () => row + numRows - 1,
    getLastColumn: () => col + numCols - 1,
    getNumRows: () => numRows,
    getNumColumns: () => numCols,
    getValues: () => {
      const out = [];
      for (let r = 0; r < numRows; r++) {
        const line = [];
        for (let c = 0; c < numCols; c++) {
          line.push(cellText((grid[row - 1 + r] || [])[col - 1 + c]));
        }
        out.push(line);
      }
      return out;
    },
    setValues: (values) => {
      if ((scenario.protected_columns || []).indexOf(col) >= 0) {
        throw new Error('You are trying to edit a protected cell or object.');
      }
      if (values.length !== numRows || values.some((line) => line.length !== numCols)) {
        throw new Error('setValues: the data does not match the range');
      }
      for (let r = 0; r < numRows; r++) {
        while (grid.length < row + r) grid.push([]);
        for (let c = 0; c < numCols; c++) grid[row - 1 + r][col - 1 + c] = values[r][c];
      }
      events.push({ kind: 'write', sheet: sheet.getName(), row: row, col: col,
                    values: JSON.parse(JSON.stringify(values)) });
    },
    setValue: (value) => {
      makeRange(sheet, grid, row, col, 1, 1).setValues([[value]]);
    },
  };
}

const spreadsheet = {
  getId: () => scenario.spreadsheet_id,
  toast: (msg) => { events.push({ kind: 'toast', message: msg }); },
};
const sheets = {};
Object.keys(scenario.sheets || {}).forEach((name) => {
  sheets[name] = makeSheet(name, scenario.sheets[name], spreadsheet);
});
spreadsheet.getSheetByName = (name) => sheets[name] || null;

const Button = { OK: 'OK', CANCEL: 'CANCEL', YES: 'YES', NO: 'NO', CLOSE: 'CLOSE' };
const ButtonSet = {
  OK: 'OK', OK_CANCEL: 'OK_CANCEL', YES_NO: 'YES_NO', YES_NO_CANCEL: 'YES_NO_CANCEL',
};
function makeMenu(caption) {
  const menu = { caption: caption, items: [] };
  const builder = {
    addItem: (label, fn) => { menu.items.push([label, fn]); return builder; },
    addSeparator: () => builder,
    addToUi: () => { menus.push(menu); },
  };
  return builder;
}
const ui = {
  Button: Button,
  ButtonSet: ButtonSet,
  createMenu: makeMenu,
  alert: function () {
    alerts.push(Array.prototype.slice.call(arguments).map(String));
    return alertAnswers.length ? alertAnswers.shift() : Button.OK;
  },
  prompt: function () {
    const answer = prompts.shift();
    if (!answer) throw new Error('unexpected prompt: ' + arguments[0]);
    events.push({ kind: 'prompt', title: String(arguments[0]) });
    return { getSelectedButton: () => answer.button, getResponseText: () => answer.text };
  },
};

const SpreadsheetApp = {
  getActive: () => spreadsheet,
  getActiveSpreadsheet: () => spreadsheet,
  getUi: () => ui,
  flush: () => { events.push({ kind: 'flush' }); },
};

const Utilities = {
  Charset: { UTF_8: 'UTF_8', US_ASCII: 'US_ASCII' },
  computeHmacSha256Signature: function (value, key, charset) {
    if (charset !== 'UTF_8') throw new Error('the charset must be Utilities.Charset.UTF_8');
    if (typeof value !== 'string' || typeof key !== 'string') throw new Error('strings expected');
    const mac = crypto.createHmac('sha256', Buffer.from(key, 'utf8'))
      .update(Buffer.from(value, 'utf8')).digest();
    // Apps Script returns Java bytes: -128..127.
    return Array.from(new Int8Array(mac.buffer, mac.byteOffset, mac.length));
  },
  sleep: () => { throw new Error('the script must not sleep and retry'); },
};

const UrlFetchApp = {
  fetch: function (url, options) {
    events.push({ kind: 'fetch', url: url, options: JSON.parse(JSON.stringify(options)) });
    const answer = responses.length > 1
      ? responses.shift() : (responses[0] || { code: 200, text: '{}' });
    if (answer.throws) throw new Error(answer.throws);
    return { getResponseCode: () => answer.code, getContentText: () => answer.text };
  },
};

const PropertiesService = {
  getScriptProperties: () => ({
    getProperty: (k) => (k in props ? props[k] : null),
    setProperty: (k, v) => { props[k] = String(v); return this; },
    setProperties: (o) => { Object.keys(o).forEach((k) => { props[k] = String(o[k]); }); },
    getProperties: () => Object.assign({}, props),
    deleteProperty: (k) => { delete props[k]; },
  }),
};

const Session = {
  getActiveUser: () => ({ getEmail: () => scenario.session_email || '' }),
  getEffectiveUser: () => ({ getEmail: () => 'owner@example.com' }),
};

let triggers = (scenario.triggers || []).map((t, i) => (
  { id: 'old-' + i, handler: t.handler, type: t.type || 'ON_EDIT' }));
const ScriptApp = {
  getProjectTriggers: () => triggers.map((t) => (
    { getHandlerFunction: () => t.handler, getUniqueId: () => t.id, _t: t })),
  deleteTrigger: (trigger) => {
    triggers = triggers.filter((t) => t !== trigger._t);
    events.push({ kind: 'delete_trigger', handler: trigger._t.handler });
  },
  newTrigger: (handler) => {
    const spec = { id: 'new-' + triggers.length, handler: handler };
    const builder = {
      forSpreadsheet: (ss) => { spec.spreadsheet = ss.getId(); return builder; },
      onEdit: () => { spec.type = 'ON_EDIT'; return builder; },
      onOpen: () => { spec.type = 'ON_OPEN'; return builder; },
      onChange: () => { spec.type = 'ON_CHANGE'; return builder; },
      create: () => {
        triggers.push(spec);
        events.push({ kind: 'create_trigger', handler: handler, type: spec.type,
                      spreadsheet: spec.spreadsheet });
        return spec;
      },
    };
    return builder;
  },
};

function record(level) {
  return function () {
    logs.push([level, Array.prototype.slice.call(arguments).map(String).join(' ')]);
  };
}
const sandbox = {
  SpreadsheetApp, Utilities, UrlFetchApp, PropertiesService, Session, ScriptApp,
  console: {
    log: record('log'), info: record('info'), warn: record('warn'), error: record('error'),
  },
  Logger: { log: record('log') },
};
vm.createContext(sandbox);
vm.runInContext(fs.readFileSync(process.argv[2], 'utf8'), sandbox, { filename: 'edits.gs' });

let result = null;
let error = null;
try {
  const call = scenario.call;
  if (call.fn === 'handleEdit') {
    const edit = call.edit;
    const sheet = sheets[edit.sheet];
    const range = sheet.getRange(edit.row, edit.col, edit.rows || 1, edit.cols || 1);
    const e = { range: range, source: spreadsheet, authMode: 'FULL', triggerUid: 'new-0' };
    if (edit.user !== null && edit.user !== undefined) e.user = { getEmail: () => edit.user };
    sandbox.__e = e;
    vm.runInContext('handleEdit(__e)', sandbox);
  } else if (call.fn === 'eval') {
    result = vm.runInContext(call.expr, sandbox);
  } else {
    vm.runInContext(call.fn + '()', sandbox);
  }
} catch (err) {
  error = String(err && err.stack ? err.stack : err);
}
process.stdout.write(JSON.stringify({
  events, logs, alerts, menus, props, triggers, result, error,
  sheets: scenario.sheets,
}));
"""


def cases_grid(rows: int) -> list[list[Any]]:
    """The Cases tab: a header and `rows` data rows (sheet rows 2 .. rows + 1)."""
    grid: list[list[Any]] = [list(CASES_HEADER)]
    for n in range(rows):
        line: list[Any] = [""] * len(CASES_HEADER)
        line[COL["case number"] - 1] = f"AS{n + 1:06d}"
        line[COL["case id"] - 1] = f"case-{n + 1}"
        line[COL["status"] - 1] = "new"
        line[COL["row"] - 1] = f"case-{n + 1}"
        line[COL["version"] - 1] = 1
        grid.append(line)
    return grid


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("apps_script") / "harness.js"
    path.write_text(HARNESS, encoding="utf-8")
    return path


def run(harness: Path, call: dict[str, Any], **scenario: Any) -> dict[str, Any]:
    assert NODE is not None
    scenario.setdefault("props", {"WEBHOOK_URL": BASE_URL, "WEBHOOK_SECRET": SECRET})
    scenario.setdefault("spreadsheet_id", SPREADSHEET_ID)
    scenario.setdefault("sheets", {"Cases": cases_grid(5)})
    scenario.setdefault(
        "responses",
        [{"code": 200, "text": '{"rows": 1, "applied": 1, "refused": 0, "unchanged": 0}'}],
    )
    scenario["call"] = call
    done = subprocess.run(
        [NODE, str(harness), str(SCRIPT)],
        input=json.dumps(scenario),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    assert out["error"] is None, out["error"]
    return out


def edit(harness: Path, *, sheet: str = "Cases", row: int = 2, col: int = COL["status"],
         rows: int = 1, cols: int = 1, user: str | None = "alice@example.com",
         **scenario: Any) -> dict[str, Any]:
    call = {"fn": "handleEdit",
            "edit": {"sheet": sheet, "row": row, "col": col, "rows": rows, "cols": cols,
                     "user": user}}
    return run(harness, call, **scenario)


def fetches(out: dict[str, Any]) -> list[dict[str, Any]]:
    return [event for event in out["events"] if event["kind"] == "fetch"]


def writes(out: dict[str, Any]) -> list[dict[str, Any]]:
    return [event for event in out["events"] if event["kind"] == "write"]


def server_signature(secret: str, timestamp: str, body: str) -> str:
    """What the server computes (the contract): HMAC-SHA256(secret, f"{ts}.{body}")."""
    return hmac.new(
        secret.encode("utf-8"), f"{timestamp}.{body}".encode(), hashlib.sha256
    ).hexdigest()


def assert_signed(fetch: dict[str, Any], secret: str = SECRET) -> dict[str, Any]:
    """Checks one post the way the server does; returns its parsed body."""
    options = fetch["options"]
    assert fetch["url"] == BASE_URL + "/api/sheets/edits"
    assert options["method"] == "post"
    assert options["contentType"] == "application/json"
    assert options["muteHttpExceptions"] is True
    body = options["payload"]
    assert isinstance(body, str)
    body.encode("ascii")  # non-ASCII is escaped: the bytes signed are the bytes sent
    headers = options["headers"]
    timestamp = headers["X-Sheets-Timestamp"]
    assert re.fullmatch(r"\d{10}", timestamp)
    assert abs(int(timestamp) - time.time()) < 60
    signature = headers["X-Sheets-Signature"]
    assert signature == "sha256=" + server_signature(secret, timestamp, body)
    assert re.fullmatch(r"sha256=[0-9a-f]{64}", signature)
    parsed: dict[str, Any] = json.loads(body)
    assert list(parsed) == ["spreadsheet_id", "sheet", "rows", "editor"]
    return parsed


# --- signing ------------------------------------------------------------------------------


@needs_node
def test_an_edit_is_posted_signed_as_the_server_verifies(harness: Path) -> None:
    out = edit(harness, row=3)
    [post] = fetches(out)
    body = assert_signed(post)
    assert body == {
        "spreadsheet_id": SPREADSHEET_ID,
        "sheet": "Cases",
        "rows": [3],
        "editor": "alice@example.com",
    }


@needs_node
def test_non_ascii_secret_and_editor_sign_over_the_exact_bytes_sent(harness: Path) -> None:
    secret = "密钥-" + "x" * 40
    out = edit(harness, user="王芳@example.com",
               props={"WEBHOOK_URL": BASE_URL, "WEBHOOK_SECRET": secret})
    [post] = fetches(out)
    body = assert_signed(post, secret=secret)
    assert body["editor"] == "王芳@example.com"


@needs_node
def test_signed_bytes_become_lowercase_hex(harness: Path) -> None:
    out = run(harness, {"fn": "eval", "expr": "toHex_([-128, -1, 0, 15, 16, 127, -16])"})
    assert out["result"] == "80ff000f107ff0"


@needs_node
def test_base_url_is_normalised(harness: Path) -> None:
    for stored in (BASE_URL + "/", BASE_URL + "/api/sheets/edits", "  " + BASE_URL + "//  "):
        out = edit(harness, props={"WEBHOOK_URL": stored, "WEBHOOK_SECRET": SECRET})
        [post] = fetches(out)
        assert_signed(post)


# --- which edits are posted -----------------------------------------------------------------


@needs_node
def test_a_large_paste_is_split_into_posts_of_500_rows(harness: Path) -> None:
    out = edit(harness, row=2, rows=1201, col=COL["status"], cols=2,
               sheets={"Cases": cases_grid(1201)})
    posts = fetches(out)
    bodies = [assert_signed(post) for post in posts]
    assert [len(body["rows"]) for body in bodies] == [500, 500, 201]
    assert [row for body in bodies for row in body["rows"]] == list(range(2, 1203))
    assert all(body["sheet"] == "Cases" for body in bodies)


@needs_node
def test_the_header_row_is_never_posted(harness: Path) -> None:
    out = edit(harness, row=1, rows=1)
    assert out["events"] == []
    out = edit(harness, row=1, rows=3)
    [post] = fetches(out)
    assert assert_signed(post)["rows"] == [2, 3]


@needs_node
@pytest.mark.parametrize("header", SYSTEM_HEADERS)
def test_edits_of_system_columns_are_ignored(harness: Path, header: str) -> None:
    out = edit(harness, col=COL[header])
    assert out["events"] == []


@needs_node
def test_a_range_of_system_columns_only_is_ignored(harness: Path) -> None:
    out = edit(harness, col=COL["edited by"], cols=2, rows=3)  # edited by .. sync note
    assert out["events"] == []
    out = edit(harness, col=COL["row"], cols=2)  # row .. version
    assert out["events"] == []


@needs_node
def test_a_range_with_an_editable_column_is_posted(harness: Path) -> None:
    out = edit(harness, col=COL["case id"], cols=3, rows=2)  # case id, status, row
    [post] = fetches(out)
    assert assert_signed(post)["rows"] == [2, 3]


@needs_node
def test_columns_without_a_header_are_ignored(harness: Path) -> None:
    out = edit(harness, col=len(CASES_HEADER) + 2)
    assert out["events"] == []


@needs_node
def test_other_tabs_are_ignored(harness: Path) -> None:
    out = edit(harness, sheet="Notes", sheets={"Notes": cases_grid(3), "Cases": cases_grid(3)})
    assert out["events"] == []


@needs_node
@pytest.mark.parametrize("view", VIEWS)
def test_every_view_is_watched(harness: Path, view: str) -> None:
    out = edit(harness, sheet=view, sheets={view: cases_grid(3)})
    [post] = fetches(out)
    assert assert_signed(post)["sheet"] == view


@needs_node
def test_rows_below_the_data_are_not_posted(harness: Path) -> None:
    # A whole column cleared: the range reaches row 1000, the data ends at row 4.
    out = edit(harness, row=1, rows=1000, sheets={"Cases": cases_grid(3)})
    [post] = fetches(out)
    assert assert_signed(post)["rows"] == [2, 3, 4]
    out = edit(harness, row=10, rows=5, sheets={"Cases": cases_grid(3)})
    assert out["events"] == []


# --- edited by --------------------------------------------------------------------------------


@needs_node
def test_edited_by_is_written_before_the_post(harness: Path) -> None:
    out = edit(harness, row=3, rows=2)
    kinds = [event["kind"] for event in out["events"]]
    assert kinds.index("write") < kinds.index("fetch")
    [write] = writes(out)
    assert (write["sheet"], write["row"], write["col"]) == ("Cases", 3, COL["edited by"])
    assert write["values"] == [["alice@example.com"], ["alice@example.com"]]
    grid = out["sheets"]["Cases"]
    assert grid[2][COL["edited by"] - 1] == "alice@example.com"
    assert grid[3][COL["edited by"] - 1] == "alice@example.com"
    assert grid[1][COL["edited by"] - 1] == ""  # row 2 was not edited


@needs_node
def test_columns_are_found_by_header_not_position(harness: Path) -> None:
    header = ["sync note", "edited by", "owner", "version", "row", "case id", "refund"]
    grid = [header, ["", "", "ann", 2, "r-1", "case-1", "10.00"]]
    out = edit(harness, sheet="Refunds", col=7, sheets={"Refunds": grid})
    [write] = writes(out)
    assert (write["row"], write["col"]) == (2, 2)
    [post] = fetches(out)
    assert assert_signed(post)["rows"] == [2]
    # The "sync note" column (first here) is ignored wherever it stands.
    assert edit(harness, sheet="Refunds", col=1, sheets={"Refunds": grid})["events"] == []


@needs_node
def test_header_text_case_and_spaces_do_not_matter(harness: Path) -> None:
    grid = cases_grid(2)
    grid[0] = [f" {name.upper()} " for name in CASES_HEADER]
    out = edit(harness, sheets={"Cases": grid})
    [write] = writes(out)
    assert write["col"] == COL["edited by"]
    assert edit(harness, col=COL["sync note"], sheets={"Cases": grid})["events"] == []


@needs_node
def test_the_editor_falls_back_to_the_session_user(harness: Path) -> None:
    out = edit(harness, user=None, session_email="bob@example.com")
    [post] = fetches(out)
    assert assert_signed(post)["editor"] == "bob@example.com"
    assert writes(out)[0]["values"] == [["bob@example.com"]]

    out = edit(harness, user="", session_email="bob@example.com")
    assert assert_signed(fetches(out)[0])["editor"] == "bob@example.com"


@needs_node
def test_an_unknown_editor_is_sent_as_empty(harness: Path) -> None:
    out = edit(harness, user=None, session_email="")
    [post] = fetches(out)
    assert assert_signed(post)["editor"] == ""
    assert writes(out)[0]["values"] == [[""]]


@needs_node
def test_without_set_up_edited_by_is_still_written_and_nothing_posted(harness: Path) -> None:
    out = edit(harness, props={})
    assert [event["kind"] for event in out["events"]] == ["write", "flush"]
    assert any("setUp" in message for _, message in out["logs"])


@needs_node
def test_a_protected_edited_by_column_does_not_stop_the_post(harness: Path) -> None:
    out = edit(harness, protected_columns=[COL["edited by"]])
    assert writes(out) == []
    [post] = fetches(out)
    assert assert_signed(post)["editor"] == "alice@example.com"
    assert any(level == "error" and "owner" in message for level, message in out["logs"])


# --- answers: never retried -------------------------------------------------------------------


@needs_node
@pytest.mark.parametrize(
    "answer",
    [
        {"code": 503, "text": '{"message": "try later"}'},
        {"code": 401, "text": '{"message": "bad signature"}'},
        {"code": 500, "text": "Internal Server Error"},
        {"throws": "Address unavailable: https://abc123.execute-api…"},
    ],
)
def test_a_failed_post_is_not_retried(harness: Path, answer: dict[str, Any]) -> None:
    out = edit(harness, responses=[answer])
    assert len(fetches(out)) == 1
    assert writes(out)  # edited by stays for the reconcile
    assert any(level == "warn" for level, _ in out["logs"])


@needs_node
def test_each_chunk_is_posted_once_even_if_one_fails(harness: Path) -> None:
    answers = [
        {"code": 503, "text": "{}"},
        {"code": 200, "text": '{"rows": 500, "applied": 500, "refused": 0, "unchanged": 0}'},
        {"code": 200, "text": '{"rows": 1, "applied": 1, "refused": 0, "unchanged": 0}'},
    ]
    out = edit(harness, rows=1001, sheets={"Cases": cases_grid(1001)}, responses=answers)
    assert [len(assert_signed(post)["rows"]) for post in fetches(out)] == [500, 500, 1]


# --- menu, set-up, trigger, test connection ---------------------------------------------------


@needs_node
def test_install_trigger_replaces_old_ones(harness: Path) -> None:
    out = run(harness, {"fn": "installTrigger"},
              triggers=[{"handler": "handleEdit"}, {"handler": "handleEdit"},
                        {"handler": "somethingElse", "type": "CLOCK"}])
    handlers = sorted(t["handler"] for t in out["triggers"])
    assert handlers == ["handleEdit", "somethingElse"]
    [created] = [e for e in out["events"] if e["kind"] == "create_trigger"]
    assert created == {"kind": "create_trigger", "handler": "handleEdit", "type": "ON_EDIT",
                       "spreadsheet": SPREADSHEET_ID}
    again = run(harness, {"fn": "installTrigger"}, triggers=out["triggers"])
    assert sorted(t["handler"] for t in again["triggers"]) == ["handleEdit", "somethingElse"]


@needs_node
def test_test_connection_posts_no_rows_and_shows_the_answer(harness: Path) -> None:
    out = run(harness, {"fn": "testConnection"}, session_email="owner@example.com",
              responses=[{"code": 200,
                          "text": '{"rows": 0, "applied": 0, "refused": 0, "unchanged": 0}'}])
    [post] = fetches(out)
    body = assert_signed(post)
    assert body["rows"] == []
    assert body["spreadsheet_id"] == SPREADSHEET_ID
    assert body["sheet"] in VIEWS
    assert "applied 0" in " ".join(out["alerts"][-1])

    out = run(harness, {"fn": "testConnection"}, responses=[{"code": 401, "text": "{}"}])
    assert "401" in " ".join(out["alerts"][-1])


@needs_node
def test_test_connection_without_set_up_says_so(harness: Path) -> None:
    out = run(harness, {"fn": "testConnection"}, props={})
    assert fetches(out) == []
    assert "setUp" in " ".join(out["alerts"][-1]) or "Set up" in " ".join(out["alerts"][-1])


@needs_node
def test_on_open_adds_the_service_desk_menu(harness: Path) -> None:
    out = run(harness, {"fn": "onOpen"})
    [menu] = out["menus"]
    assert menu["caption"] == "Service desk"
    assert [fn for _, fn in menu["items"]] == ["setUp", "installTrigger", "testConnection"]


@needs_node
def test_set_up_stores_url_and_secret_in_script_properties(harness: Path) -> None:
    out = run(harness, {"fn": "setUp"}, props={},
              prompts=[{"button": "OK", "text": f" {BASE_URL}/ "},
                       {"button": "OK", "text": SECRET}])
    assert out["props"] == {"WEBHOOK_URL": BASE_URL, "WEBHOOK_SECRET": SECRET}

    # Empty answers keep what is stored; a new URL alone replaces only the URL.
    stored = {"WEBHOOK_URL": BASE_URL, "WEBHOOK_SECRET": SECRET}
    out = run(harness, {"fn": "setUp"}, props=stored,
              prompts=[{"button": "OK", "text": "https://desk.example.com/api/sheets/edits"},
                       {"button": "OK", "text": ""}])
    assert out["props"] == {"WEBHOOK_URL": "https://desk.example.com", "WEBHOOK_SECRET": SECRET}


@needs_node
def test_set_up_refuses_plain_http_and_cancel_stores_nothing(harness: Path) -> None:
    out = run(harness, {"fn": "setUp"}, props={},
              prompts=[{"button": "OK", "text": "http://desk.example.com"}])
    assert out["props"] == {}
    out = run(harness, {"fn": "setUp"}, props={},
              prompts=[{"button": "OK", "text": BASE_URL}, {"button": "CANCEL", "text": "x"}])
    assert out["props"] == {}
    out = run(harness, {"fn": "setUp"}, props={}, alert_answers=["NO"],
              prompts=[{"button": "OK", "text": BASE_URL}, {"button": "OK", "text": "short"}])
    assert out["props"] == {}


# --- static checks (no node needed): a rename on either side is caught --------------------------


def script_text() -> str:
    return SCRIPT.read_text(encoding="utf-8")


def test_script_names_the_contract() -> None:
    text = script_text()
    assert "'/api/sheets/edits'" in text
    assert "'X-Sheets-Timestamp'" in text
    assert "'X-Sheets-Signature'" in text
    assert "'sha256='" in text
    assert re.search(r"MAX_ROWS_PER_POST\s*=\s*500\b", text)
    assert "Utilities.computeHmacSha256Signature(" in text
    assert "Utilities.Charset.UTF_8" in text
    assert "muteHttpExceptions: true" in text
    for name in SYSTEM_HEADERS:
        assert f"'{name}'" in text, name
    views = re.search(r"VIEW_TABS\s*=\s*\[([^\]]*)\]", text)
    assert views is not None
    assert re.findall(r"'([^']*)'", views.group(1)) == VIEWS


def test_script_has_the_entry_points_and_no_simple_on_edit() -> None:
    text = script_text()
    for fn in ("onOpen", "setUp", "installTrigger", "handleEdit", "testConnection"):
        assert re.search(rf"^function {fn}\(", text, re.MULTILINE), fn
    # A simple onEdit cannot call UrlFetchApp: the installable handleEdit does the work.
    assert not re.search(r"^function onEdit\(", text, re.MULTILINE)
    assert "PropertiesService.getScriptProperties()" in text


def test_script_holds_no_secret_or_address() -> None:
    text = script_text()
    # The only address is the example shown in the set-up prompt.
    assert set(re.findall(r"https?://[^\s'\"]+", text)) == {
        "https://abc123.execute-api.eu-central-1.amazonaws.com/api"
    }
    # The one string assigned to a "secret" name is the Script Property's name.
    assigned = re.findall(r"secret\w*\s*[:=]\s*'([^']*)'", text, re.IGNORECASE)
    assert assigned == ["WEBHOOK_SECRET"]


def test_manifest() -> None:
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    assert manifest["runtimeVersion"] == "V8"
    assert manifest["timeZone"] == "Asia/Shanghai"
    assert set(manifest["oauthScopes"]) == {
        "https://www.googleapis.com/auth/spreadsheets.currentonly",
        "https://www.googleapis.com/auth/script.external_request",
        "https://www.googleapis.com/auth/userinfo.email",
        "https://www.googleapis.com/auth/script.scriptapp",
    }
