"""The web application: the app factory, its services and the gunicorn server."""
