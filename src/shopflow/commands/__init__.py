"""CLI commands, one module per command group; ``shopflow.cli`` wires them into one typer app."""
