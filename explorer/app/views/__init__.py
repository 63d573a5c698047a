"""One module per tab, each with `draw(cfg, summary)`: widgets -> explorer -> display."""

# Tab label -> module in explorer.app.views with `draw(cfg, summary)`. A view's module is
# imported when its tab is first opened, so the Lab's data and plotting cost nothing until then.
VIEWS = {
    "Diagram": "diagram",
    "Unit": "unit",
    "Summary": "summary",
    "Latency": "latency",
    "Compare": "compare",
    "Lab": "lab",
    "History": "history",
    "Learn": "learn",
}
DEFAULT_VIEW = "Diagram"
