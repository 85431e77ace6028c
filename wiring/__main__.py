from wiring.cli import app

app()
