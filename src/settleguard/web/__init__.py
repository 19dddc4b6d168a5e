"""The REST API (and later the operations console and merchant portal): ``create_app`` in web/app.py."""
