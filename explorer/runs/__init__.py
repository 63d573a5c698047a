"""Kept runs: every measurement and Lab run, in one SQLite file, carried between machines as JSONL.

record  RunRecord: one run (kind, network, settings, device, host, versions, times, status, result)
keep    Keeper: writes runs as they happen; a failing store is reported once and left alone
store   RunStore: the SQLite file (where it lives, schema versions, many writers at once), import/export
"""
from explorer.runs.keep import Keeper, make_record
from explorer.runs.record import RUN_KINDS, RUN_STATUSES, RunKind, RunRecord, RunStatus, headline
from explorer.runs.store import ImportReport, RunStore, StoreError, default_path, open_store

__all__ = ["ImportReport", "Keeper", "headline", "make_record", "RUN_KINDS", "RUN_STATUSES", "RunKind", "RunRecord", "RunStatus", "RunStore",
           "StoreError", "default_path", "open_store"]
