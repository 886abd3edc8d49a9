"""The worker: jobs written by `events.emit` in the transaction of the change that caused them (the
outbox), run by `flask worker` with retries; and the scheduled scans.

- `queue.py`   the procrastinate app and `defer` (enqueue on the session's own connection)
- `tasks.py`   what the worker runs: mails, the periodic scans, stalled-job recovery
- `runner.py`  running a task in the Flask app (one transaction per job), the worker itself
"""
