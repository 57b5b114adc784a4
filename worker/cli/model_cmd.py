"""`radraft model build-tiny DIR` and `radraft model serve --model DIR --port P`."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from radraft.core.errors import RadraftError
from radraft.worker.cli.context import fail, state

app = typer.Typer(help="The test model and the in-process OpenAI-compatible server.",
                  no_args_is_help=True)


@app.command("build-tiny")
def build_tiny(
    out: Path = typer.Argument(..., file_okay=False, help="Directory to write the model into."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random weights."),
) -> None:
    """Build the tiny random Qwen2.5-VL test model (text meaningless, structure real)."""
    try:
        from radraft.reporting.tiny_model import build_tiny_model
    except ImportError as exc:
        raise fail(f"the model extra is not installed (pip install 'radraft[model]'): {exc}") \
            from None
    typer.echo(f"building the tiny model in {out} ...", err=True)
    build_tiny_model(out, seed=seed)
    typer.echo(f"tiny model written to {out}")


@app.command("schema")
def schema(
    frames: int = typer.Option(0, "--frames", help="Bound cited frames to 0..N-1 (a request's "
                                                   "schema); 0: the base schema."),
) -> None:
    """Print the DraftReport JSON schema the model's answer is constrained to."""
    import json

    from radraft.reporting.report_schema import base_schema, request_schema

    typer.echo(json.dumps(request_schema(frames) if frames else base_schema(), indent=1))


@app.command("serve")
def serve(
    ctx: typer.Context,
    model: Path | None = typer.Option(None, "--model", "-m", file_okay=False,
                                      help="Model directory (default: model.path)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", "-p", help="Port to listen on."),
    name: str | None = typer.Option(None, "--served-model-name",
                                    help="Model name clients ask for (default: model.name)."),
) -> None:
    """Serve a model directory over vLLM's OpenAI-compatible chat completions API."""
    settings = state(ctx).settings
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        from radraft.reporting.model._server import serve_model
    except ImportError as exc:
        raise fail(f"the model extra is not installed (pip install 'radraft[model]'): {exc}") \
            from None
    try:
        serve_model(model or settings.model_path, host=host, port=port,
                    served_name=name or settings.model.name)
    except RadraftError as exc:
        raise fail(str(exc), 1) from None
