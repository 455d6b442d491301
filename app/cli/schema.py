"""``credit-score schema``: draft a schema from a data file (infer) and explain a hand-written one (check)."""

from __future__ import annotations

from pathlib import Path

import click

from app.cli.common import CliError


@click.group("schema")
def schema_group() -> None:
    """Draft a dataset schema from a file, and check a schema."""


@schema_group.command("infer")
@click.option("--data", "data_path", type=click.Path(), required=True, help="CSV or Parquet file.")
@click.option("--target", required=True, help="The column with the class label (as written in the file).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Where to write the draft (default: stdout).")
@click.option("--name", default=None, help="The schema's name [default: the file's name].")
@click.option("--max-categories", type=click.IntRange(2, 10_000), default=30, show_default=True,
              help="A text column with more distinct values is left out as free text or an identifier.")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
def schema_infer(data_path: str, target: str, output: str | None, name: str | None, max_categories: int,
                 force: bool) -> None:
    """Draft a schema from a CSV or Parquet file, each guess marked with a comment to review."""
    from app.schema_check import check_schema_dict
    from app.schema_infer import InferError, infer_schema, read_frame, render_yaml

    if output and Path(output).exists() and not force:
        raise CliError(f"{output} exists: --force overwrites it")
    try:
        df = read_frame(data_path)
        draft = infer_schema(df, target, name or Path(data_path).stem, max_categories)
    except InferError as e:
        raise CliError(str(e)) from None
    text = render_yaml(draft, Path(data_path).name)
    import yaml

    problems = check_schema_dict(yaml.safe_load(text))
    if problems:  # a draft that does not load is our bug: say so rather than write it
        raise CliError("the draft schema does not load: " + "; ".join(problems))
    if not output:
        click.echo(text, nl=False)
        return
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text(text, encoding="utf-8")
    click.echo(f"wrote {output}: {len(draft.features)} feature(s), target {draft.target.fields['name']!r} "
               f"(bad class {draft.target.fields['bad_class']!r})" +
               (f"; {len(draft.left_out)} column(s) left out" if draft.left_out else "")
               + "; review the '# review:' comments", err=True)
    for note in draft.left_out:
        click.echo(f"  left out {note}", err=True)


@schema_group.command("check")
@click.argument("schema_path", type=click.Path())
def schema_check(schema_path: str) -> None:
    """Explain every problem of a schema file in one pass; exit 1 when it has any."""
    from app.schema_check import check_schema_file

    schema, problems = check_schema_file(schema_path)
    if problems:
        lines = "\n".join(f"  {p}" for p in problems)
        raise CliError(f"{schema_path}: {len(problems)} problem(s):\n{lines}")
    t = schema.target
    click.echo(f"{schema_path}: ok: schema {schema.name!r}, {len(schema.features)} feature(s), target {t.name!r} "
               f"with classes {t.classes} (bad class {t.bad_class!r})")
