"""The ceiling: a one-file Flask app answering "ok", run under the same gunicorn as the portal."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def ok():
    return "ok"
