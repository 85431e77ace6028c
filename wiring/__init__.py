"""The wiring, the top layer: the app factory, the admin API, the command line and the Rasa project import."""
