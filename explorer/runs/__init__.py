"""Kept runs: every measurement and Lab run, in one SQLite file, carried between machines as JSONL.

record  RunRecord: one run (kind, network, settings, device, host, versions, times, status, result)
store   RunStore: the SQLite file (where it lives, schema versions, many writers at once), import/export
"""
from explorer.runs.record import RUN_KINDS, RUN_STATUSES, RunKind, RunRecord, RunStatus
from explorer.runs.store import ImportReport, RunStore, StoreError, default_path, open_store

__all__ = ["ImportReport", "RUN_KINDS", "RUN_STATUSES", "RunKind", "RunRecord", "RunStatus", "RunStore",
           "StoreError", "default_path", "open_store"]
