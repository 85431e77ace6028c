"""`assistant` command line (wiring, the top layer): one module per command group.

serve.py: up, serve, chat, status · db.py: db upgrade · train.py: train nlu · retrain.py: retrain ·
data.py: export, review, forget · models.py: models list/activate/rollback · evaluate.py: eval nlu/llm/kb/replies ·
kb.py: kb add/list/remove/reindex/search · annotations.py:
annotations list/add/import/export/disable/remove · telegram.py: telegram set-webhook · init.py: init --from-rasa.
Shared: context.py (settings and store once per command, errors as sentences), terminal.py (consoles).
"""

from __future__ import annotations

from typing import Annotated

import typer

import wiring.cli.annotations as annotations_cli  # the name `annotations` is the __future__ import's
from wiring.cli import data, db, evaluate, init, kb, models, retrain, serve, telegram, train
from wiring.cli.context import DEBUG

app = typer.Typer(help="Conversational assistant: Rasa routes, vLLM answers, every turn in SQL.", no_args_is_help=True)


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="show the traceback of every error")] = False,
) -> None:
    if debug:
        DEBUG["on"] = True


for module in (serve, db, train, retrain, data, models, evaluate, kb, annotations_cli, telegram, init):
    module.register(app)

__all__ = ["app"]
