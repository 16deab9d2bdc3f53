"""Policy of the TAP service: who may read what, how a query runs, how catalogues load."""
