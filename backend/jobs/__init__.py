"""Remote processing: the durable job queue in PostgreSQL, its API, workers and dispatch."""
