"""History tab: every kept run (this machine's and imported ones), filtered, and any one in full."""
from __future__ import annotations

import json

import streamlit as st

from explorer import ArchConfig
from explorer.app.kept import keeper, store_notice
from explorer.app.text import plain_text
from explorer.limits import MAX_HISTORY
from explorer.runs import RUN_KINDS, RunRecord, headline


# Column widths (px) that fit the main area at 1024 px beside the selection boxes; a wider page
# gives each the same few pixels more. Rows tall enough for the grid to wrap a cell's text onto
# three lines, so a long device name or result reads whole (the host and the seconds are in the
# chosen run's details).
_WIDTHS = {"when (UTC)": 84, "kind": 72, "network": 116, "device": 136, "result": 120}
_ROW_HEIGHT = 66  # px: above 64 px Streamlit's grid wraps a cell's text


def _rows(records: list[RunRecord]) -> list[dict]:
    return [{"when (UTC)": r.when[:16], "kind": r.kind if r.status == "complete" else f"{r.kind} ({r.status})",
             "network": r.name, "device": r.device, "result": headline(r)}
            for r in records]


def _filters(cfg: ArchConfig) -> tuple[list[str], bool, str]:
    # The kinds on a row of their own: beside other filters, the chips are cut off at 1024 px.
    kinds = st.pills("Kinds", RUN_KINDS, default=list(RUN_KINDS), selection_mode="multi", key="hist_kinds")
    c1, c2 = st.columns(2, vertical_alignment="bottom")
    device = c1.text_input("Device contains", key="hist_device", max_chars=80, placeholder="e.g. CUDA, Xeon, 1 thread")
    this_net = c2.checkbox("This network only", key="hist_this", help="Only runs of the network shown now "
                           "(whatever it was called when it was measured)")
    return kinds, this_net, device.strip()


def _show(record: RunRecord) -> None:
    st.markdown(f"**{record.kind}** of **{plain_text(record.name)}** on {plain_text(record.device)} · "
                f"{record.when} UTC · {record.status}")
    if record.message:
        st.caption(plain_text(record.message))
    st.caption(f"host {plain_text(record.host)} · torch {plain_text(record.torch_version or '?')} · "
               f"explorer {plain_text(record.version)} · id {record.id}")
    c1, c2 = st.columns(2)
    c1.markdown("Settings")
    c1.json(record.settings, expanded=True)
    c2.markdown("Config")
    c2.json(record.config, expanded=False)
    st.markdown("Result")
    st.json(record.result, expanded=1)
    d1, d2 = st.columns(2)
    d1.download_button("Download this run (JSON)", json.dumps(record.to_dict(), indent=2, ensure_ascii=False),
                       file_name=f"run-{record.kind}-{record.id[:8]}.json", mime="application/json",
                       key="hist_download_one")
    if d2.button("Delete this run", key="hist_delete"):
        keeper().delete([record.id])
        st.rerun()


def _export(records: list[RunRecord]) -> None:
    st.download_button(f"Export the {len(records)} run{'s' * (len(records) != 1)} listed (JSONL)",
                       "".join(r.to_json() + "\n" for r in records), file_name="runs.jsonl",
                       mime="application/jsonl", key="hist_export", disabled=not records)


def _import() -> None:
    upload = st.file_uploader("Import runs (a JSONL file exported here or by `runs export`)", type=["jsonl"],
                              key="hist_import")
    if upload is not None and st.session_state.get("hist_imported") != upload.file_id:
        st.session_state.hist_imported = upload.file_id
        text = upload.getvalue().decode("utf-8-sig", "replace")
        report = keeper().import_lines(text.splitlines())
        if report is None:
            store_notice()
            return
        st.success(f"Imported {report.added} run{'s' * (report.added != 1)}"
                   + (f"; {report.present} already kept" if report.present else ""))
        for number, why in report.errors[:10]:
            st.warning(f"Line {number} skipped: {plain_text(why)}")


def draw(cfg: ArchConfig, summary: dict) -> None:
    store_notice()
    k = keeper()
    if k.store is None:
        st.info("Runs are not kept on this server.")
        return
    kinds, this_net, device = _filters(cfg)
    listing, exporting = st.container(), st.container()
    _import()  # drawn below the list, read before it: imported runs are listed at once
    records = k.records(network=cfg.arch_key() if this_net else None, device=device or None, limit=MAX_HISTORY)
    store_notice()
    records = [r for r in records if r.kind in kinds]
    with listing:
        st.caption(f"{len(records)} run{'s' * (len(records) != 1)} kept in `{k.store.path}`"
                   + (f" (the newest {MAX_HISTORY})" if len(records) == MAX_HISTORY else ""))
        if records:
            event = st.dataframe(_rows(records), hide_index=True, on_select="rerun", selection_mode="single-row",
                                 key="hist_table", width="stretch", row_height=_ROW_HEIGHT,
                                 column_config={k: st.column_config.Column(width=w) for k, w in _WIDTHS.items()})
            chosen = event.selection.rows
            if chosen:
                _show(records[chosen[0]])
            else:
                st.caption("Choose a row to see the whole result.")
    with exporting:
        _export(records)
