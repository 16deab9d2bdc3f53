"""Plain data of the TAP service: catalogue metadata and queries."""
