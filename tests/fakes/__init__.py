"""Test doubles that fake external services at their HTTP API."""

from tests.fakes.google_sheets import FakeGoogleSheets, RecordedRequest, StoredCell, Tab

__all__ = ["FakeGoogleSheets", "RecordedRequest", "StoredCell", "Tab"]
