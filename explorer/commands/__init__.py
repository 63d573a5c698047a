"""One module a sub-command; each defines register(sub)."""
