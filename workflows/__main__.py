"""``python -m workflows watch|batch|jobs ...``: the workflow commands without dubkit's CLI."""
import typer

from workflows.cli import register

app = typer.Typer(name="workflows", help="dubkit watch folders, batch runs and the job queue.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
register(app)

if __name__ == "__main__":
    app()
