"""Results: the row schema (rows), tables and aggregation (tables), plots (plots) and the sweep's
report text (report). Pure functions of rows and paths; no run directories."""
