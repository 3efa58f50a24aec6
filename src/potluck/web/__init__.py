"""The web app: server-rendered pages (Jinja2 + htmx) served by the API process."""
