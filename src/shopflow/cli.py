"""The ``shopflow`` command line: import | demo | serve | evaluate | train | datasets | bench.

Each command group lives in ``shopflow.commands.<group>``; this module only wires them together, so
``shopflow --help`` stays fast (heavy libraries are imported inside the commands).
"""

from __future__ import annotations

import logging

import typer

from shopflow.commands import datasets as datasets_cmd
from shopflow.commands import demo as demo_cmd
from shopflow.commands import evaluate as evaluate_cmd
from shopflow.commands import imports as import_cmd
from shopflow.commands import serve as serve_cmd
from shopflow.commands import train as train_cmd

app = typer.Typer(
    name="shopflow",
    help=(
        "shopflow: a self-hosted, real-time recommendation engine for e-commerce.\n\n"
        "Settings come from SHOPFLOW_* environment variables and an optional TOML file "
        "(SHOPFLOW_CONFIG); everything shopflow writes goes under SHOPFLOW_DATA_DIR "
        "(default ./data)."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

app.command(
    "import",
    help=import_cmd.HELP,
    no_args_is_help=True,
)(import_cmd.import_command)
app.add_typer(demo_cmd.app, name="demo")
app.add_typer(datasets_cmd.app, name="datasets")
app.command("serve", help=serve_cmd.HELP)(serve_cmd.serve_command)
app.command("keys", help=serve_cmd.KEYS_HELP)(serve_cmd.keys_command)
app.command("evaluate", help=evaluate_cmd.HELP)(evaluate_cmd.evaluate_command)
app.command("train", help=train_cmd.HELP)(train_cmd.train_command)


@app.callback()
def _main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at DEBUG level."),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )


if __name__ == "__main__":
    app()
