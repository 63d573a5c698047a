"""One module per tab, each with `draw(cfg, summary)`: widgets -> explorer -> display."""
