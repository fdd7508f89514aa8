/**
 * Service desk (售后服务) — posts staff edits of the mirrored sheet to the service desk.
 *
 * Paste this file into Extensions → Apps Script of the spreadsheet, replace the manifest
 * with appsscript.json, then run setUp, installTrigger and testConnection (sheets/README.md).
 *
 * What it does on every edit (installable on-edit trigger, runs as whoever installed it):
 *   1. ignores edits to row 1, to tabs that are not views, and to the columns the system owns
 *      (case id, row, version, edited by, sync note);
 *   2. writes the editor's e-mail into the hidden "edited by" cell of each edited row, so the
 *      service desk's scheduled reconcile knows who edited even if the post below is lost;
 *   3. posts {"spreadsheet_id", "sheet", "rows", "editor"} to {WEBHOOK_URL}/api/sheets/edits,
 *      at most 500 rows per post, signed with HMAC-SHA256 over "<timestamp>.<body>".
 * It never retries: the service desk's reconcile picks up whatever a failed post missed.
 *
 * Columns are found by the header text in row 1, never by position.
 * WEBHOOK_URL and WEBHOOK_SECRET live in Script Properties (run setUp), never in this code.
 */

const VIEW_TABS = ['Cases', 'Follow-ups', 'Parts', 'Refunds', 'Overdue'];
const HEADER_CASE_ID = 'case id';
const HEADER_ROW = 'row';
const HEADER_VERSION = 'version';
const HEADER_EDITED_BY = 'edited by';
const HEADER_SYNC_NOTE = 'sync note';
/** Columns the system owns: an edit touching only these is not posted. */
const SYSTEM_HEADERS = [
  HEADER_CASE_ID, HEADER_ROW, HEADER_VERSION, HEADER_EDITED_BY, HEADER_SYNC_NOTE,
];
const EDITS_PATH = '/api/sheets/edits';
const MAX_ROWS_PER_POST = 500;
const PROP_URL = 'WEBHOOK_URL';
const PROP_SECRET = 'WEBHOOK_SECRET';
const MIN_SECRET_LENGTH = 32;
const HANDLER = 'handleEdit';
const MENU = 'Service desk';

// ---------------------------------------------------------------------------------------
// Menu and set-up
// ---------------------------------------------------------------------------------------

/** Simple trigger: adds the "Service desk" menu. */
function onOpen() {
  SpreadsheetApp.getUi()
    .createMenu(MENU)
    .addItem('Set up webhook (设置)…', 'setUp')
    .addItem('Install edit trigger (安装触发器)', 'installTrigger')
    .addItem('Test connection (测试连接)', 'testConnection')
    .addToUi();
}

/**
 * Asks for the service desk's base URL and the webhook secret and stores them in Script
 * Properties. An empty answer keeps the value stored before.
 */
function setUp() {
  const ui = SpreadsheetApp.getUi();
  const props = PropertiesService.getScriptProperties();
  const oldUrl = props.getProperty(PROP_URL) || '';

  const urlAnswer = ui.prompt(
    'Service desk: address (1/2)',
    'The service desk API base URL, e.g. https://abc123.execute-api.eu-central-1.amazonaws.com/api'
      + ' (edits are posted to <this address>' + EDITS_PATH + ').'
      + (oldUrl ? '\nNow: ' + oldUrl + '\nLeave empty to keep it.' : ''),
    ui.ButtonSet.OK_CANCEL);
  if (urlAnswer.getSelectedButton() !== ui.Button.OK) return;
  let url = normaliseBaseUrl_(urlAnswer.getResponseText());
  if (!url) {
    url = oldUrl;
  }
  if (!/^https:\/\/[^\s/]+/i.test(url)) {
    ui.alert('The address must start with https:// — nothing was stored.');
    return;
  }

  const hasSecret = !!props.getProperty(PROP_SECRET);
  const secretAnswer = ui.prompt(
    'Service desk: webhook secret (2/2)',
    'The webhook secret: the same value as "webhook_secret" in the service desk\'s'
      + ' secret (AWS Secrets Manager).'
      + (hasSecret ? '\nLeave empty to keep the one stored.' : ''),
    ui.ButtonSet.OK_CANCEL);
  if (secretAnswer.getSelectedButton() !== ui.Button.OK) return;
  const secret = String(secretAnswer.getResponseText() || '').trim();
  if (!secret && !hasSecret) {
    ui.alert('No secret given — nothing was stored.');
    return;
  }
  if (secret && secret.length < MIN_SECRET_LENGTH) {
    const go = ui.alert(
      'The secret is shorter than ' + MIN_SECRET_LENGTH + ' characters. Store it anyway?',
      ui.ButtonSet.YES_NO);
    if (go !== ui.Button.YES) return;
  }

  props.setProperty(PROP_URL, url);
  if (secret) props.setProperty(PROP_SECRET, secret);
  ui.alert('Stored. Now run "Install edit trigger", then "Test connection".');
}

/**
 * Creates the installable on-edit trigger for handleEdit, removing this user's old ones
 * first (running it twice leaves one trigger).
 */
function installTrigger() {
  const ss = SpreadsheetApp.getActiveSpreadsheet();
  ScriptApp.getProjectTriggers().forEach(function (trigger) {
    if (trigger.getHandlerFunction() === HANDLER) ScriptApp.deleteTrigger(trigger);
  });
  ScriptApp.newTrigger(HANDLER).forSpreadsheet(ss).onEdit().create();
  try {
    ss.toast('Edits are now sent to the service desk.', MENU, 5);
  } catch (err) {
    // No spreadsheet UI (run from the editor): nothing to show.
  }
}

/** Posts a signed request with no rows and shows the answer. */
function testConnection() {
  const ui = SpreadsheetApp.getUi();
  const config = readConfig_();
  if (!config) {
    ui.alert('Not set up: run "Set up webhook" first.');
    return;
  }
  const ss = SpreadsheetApp.getActiveSpreadsheet();
  const result = postRows_(config, ss.getId(), VIEW_TABS[0], [], editorEmail_(null));
  ui.alert('Service desk answered', describeResult_(result), ui.ButtonSet.OK);
}

// ---------------------------------------------------------------------------------------
// The trigger
// ---------------------------------------------------------------------------------------

/** Installable on-edit trigger (installTrigger creates it). */
function handleEdit(e) {
  if (!e || !e.range) return;
  const range = e.range;
  const sheet = range.getSheet();
  const sheetName = sheet.getName();
  if (VIEW_TABS.indexOf(sheetName) < 0) return;

  const lastDataRow = sheet.getLastRow();
  const firstRow = Math.max(range.getRow(), 2);
  // A whole column cleared reaches far below the data: rows past the last one are empty.
  const lastRow = Math.min(range.getLastRow(), lastDataRow);
  if (lastRow < firstRow) return;

  const columns = headerColumns_(sheet);
  if (!touchesEditableColumn_(columns, range.getColumn(), range.getLastColumn())) return;

  const rows = [];
  for (let r = firstRow; r <= lastRow; r++) rows.push(r);
  const editor = editorEmail_(e);

  // 1. Who edited, written first: it survives a lost post (script writes fire no onEdit).
  const editedByColumn = columns[HEADER_EDITED_BY];
  if (editedByColumn) {
    const cells = rows.map(function () { return [editor]; });
    try {
      sheet.getRange(firstRow, editedByColumn, rows.length, 1).setValues(cells);
      SpreadsheetApp.flush();
    } catch (err) {
      // Typically: whoever installed the trigger may not edit the protected column.
      console.error('Could not write "' + HEADER_EDITED_BY + '" on ' + sheetName + ': ' + err
        + ' — install the trigger as the spreadsheet\'s owner.');
    }
  } else {
    console.warn('Tab "' + sheetName + '" has no "' + HEADER_EDITED_BY + '" column.');
  }

  // 2. Tell the service desk, 500 rows per post, never retried.
  const config = readConfig_();
  if (!config) {
    console.warn('Service desk webhook not set up (run setUp): edit left to the reconcile.');
    return;
  }
  const spreadsheetId = e.source ? e.source.getId() : sheet.getParent().getId();
  chunk_(rows, MAX_ROWS_PER_POST).forEach(function (part) {
    const result = postRows_(config, spreadsheetId, sheetName, part, editor);
    if (result.code !== 200) {
      console.warn('Service desk: rows ' + part[0] + '–' + part[part.length - 1]
        + ' of ' + sheetName + ' not posted (' + describeResult_(result)
        + '); the reconcile will pick them up.');
    }
  });
}

// ---------------------------------------------------------------------------------------
// Helpers (the trailing underscore keeps them out of the Run menu)
// ---------------------------------------------------------------------------------------

/** {header text (trimmed, lower case): 1-based column} from row 1. */
function headerColumns_(sheet) {
  const lastColumn = sheet.getLastColumn();
  const columns = {};
  if (lastColumn < 1) return columns;
  const headers = sheet.getRange(1, 1, 1, lastColumn).getValues()[0];
  headers.forEach(function (value, index) {
    const key = String(value === null || value === undefined ? '' : value).trim().toLowerCase();
    if (key && !(key in columns)) columns[key] = index + 1;
  });
  return columns;
}

/** Whether columns first..last include one with a header that is not the system's. */
function touchesEditableColumn_(columns, first, last) {
  const system = {};
  SYSTEM_HEADERS.forEach(function (name) {
    if (columns[name]) system[columns[name]] = true;
  });
  const headed = {};
  Object.keys(columns).forEach(function (name) { headed[columns[name]] = true; });
  for (let c = first; c <= last; c++) {
    if (headed[c] && !system[c]) return true;
  }
  return false;
}

/** The editor's e-mail: the event's user, else the active user, else "". */
function editorEmail_(e) {
  let email = '';
  try {
    if (e && e.user && typeof e.user.getEmail === 'function') email = e.user.getEmail() || '';
  } catch (err) {
    email = '';
  }
  if (!email) {
    try {
      email = Session.getActiveUser().getEmail() || '';
    } catch (err) {
      email = '';
    }
  }
  return String(email).trim();
}

function readConfig_() {
  const props = PropertiesService.getScriptProperties();
  const url = normaliseBaseUrl_(props.getProperty(PROP_URL));
  const secret = props.getProperty(PROP_SECRET) || '';
  if (!url || !secret) return null;
  return { url: url, secret: secret };
}

/** Trims, drops trailing slashes and a pasted ".../api/sheets/edits". */
function normaliseBaseUrl_(value) {
  let url = String(value || '').trim().replace(/\/+$/, '');
  if (url.slice(-EDITS_PATH.length) === EDITS_PATH) {
    url = url.slice(0, -EDITS_PATH.length).replace(/\/+$/, '');
  }
  return url;
}

function chunk_(items, size) {
  const parts = [];
  for (let i = 0; i < items.length; i += size) parts.push(items.slice(i, i + size));
  return parts;
}

/**
 * The exact body sent and signed. Non-ASCII characters are written as \\uXXXX escapes so
 * that the bytes signed and the bytes sent are the same whatever charset UrlFetchApp uses.
 */
function buildBody_(spreadsheetId, sheetName, rows, editor) {
  const json = JSON.stringify({
    spreadsheet_id: spreadsheetId,
    sheet: sheetName,
    rows: rows,
    editor: editor,
  });
  return json.replace(/[\u007f-\uffff]/g, function (ch) {
    return '\\u' + ('0000' + ch.charCodeAt(0).toString(16)).slice(-4);
  });
}

/** Lowercase hex of a byte array whose bytes are -128..127 (as Apps Script returns them). */
function toHex_(bytes) {
  let hex = '';
  for (let i = 0; i < bytes.length; i++) {
    hex += ((bytes[i] & 0xff) + 0x100).toString(16).slice(1);
  }
  return hex;
}

/** "sha256=" + lowercase hex of HMAC-SHA256(key = secret, message = timestamp + "." + body). */
function sign_(secret, timestamp, body) {
  const mac = Utilities.computeHmacSha256Signature(
    timestamp + '.' + body, secret, Utilities.Charset.UTF_8);
  return 'sha256=' + toHex_(mac);
}

/** One signed post; returns {code, text, answer}; code 0 when the request itself failed. */
function postRows_(config, spreadsheetId, sheetName, rows, editor) {
  const body = buildBody_(spreadsheetId, sheetName, rows, editor);
  const timestamp = String(Math.floor(Date.now() / 1000));
  const options = {
    method: 'post',
    contentType: 'application/json',
    payload: body,
    headers: {
      'X-Sheets-Timestamp': timestamp,
      'X-Sheets-Signature': sign_(config.secret, timestamp, body),
    },
    muteHttpExceptions: true,
    followRedirects: false,
  };
  let response;
  try {
    response = UrlFetchApp.fetch(config.url + EDITS_PATH, options);
  } catch (err) {
    return { code: 0, text: String(err && err.message ? err.message : err), answer: null };
  }
  const code = response.getResponseCode();
  const text = response.getContentText();
  let answer = null;
  try {
    answer = JSON.parse(text);
  } catch (err) {
    answer = null;
  }
  return { code: code, text: text, answer: answer };
}

function describeResult_(result) {
  if (result.code === 200 && result.answer) {
    const a = result.answer;
    return 'OK: rows ' + a.rows + ', applied ' + a.applied + ', refused ' + a.refused
      + ', unchanged ' + a.unchanged + '.';
  }
  if (result.code === 0) return 'no answer: ' + result.text;
  if (result.code === 401) {
    return '401: signature refused — the webhook secret differs from the service desk\'s,'
      + ' or a clock is more than 5 minutes off.';
  }
  if (result.code === 503) return '503: the service desk is busy; edits are picked up later.';
  if (result.code === 404) return '404: wrong address — check the base URL in setUp.';
  return 'HTTP ' + result.code + ': ' + String(result.text || '').slice(0, 300);
}
