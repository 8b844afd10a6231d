"""Remote processing: the durable job queue in PostgreSQL (`repository.py`, fenced SQL;
`queue.py`, one transaction per worker call), the jobs API (`endpoints.py`, `service.py`,
`upload.py`), admission (`admission.py`), job kinds (`kinds.py`), workers (`worker.py`,
`worker_cli.py`, `celery_app.py`) and dispatch in the API process (`dispatch.py`)."""
