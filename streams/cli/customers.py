"""`crmstream import`: a merchant's existing customers from CSV or Excel."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from crmstream.settings import Settings
from streams.cli.events import EXIT_BAD_INPUT, finish
from streams.cli.names import shop_name
from streams.cli.progress import progress

if TYPE_CHECKING:
    from schemas.events import Envelope

pass_settings = click.make_pass_decorator(Settings)


def _mapping(pairs: tuple[str, ...]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        header, sep, target = pair.partition("=")
        if not sep or not header or not target:
            raise click.BadParameter(f"{pair!r}: expected HEADER=FIELD", param_hint="--map")
        mapping[header] = target
    return mapping


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--shop", required=True, callback=shop_name, help="The merchant these customers belong to."
)
@click.option("--map", "pairs", multiple=True, metavar="HEADER=FIELD", help="Map a column.")
@click.option("--strict", is_flag=True, help="Send nothing if any row is bad.")
@click.option("--dry-run", is_flag=True, help="Check every row, send nothing.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write JSON Lines.")
@pass_settings
def import_customers(
    settings: Settings,
    file: Path,
    shop: str,
    pairs: tuple[str, ...],
    strict: bool,
    dry_run: bool,
    out: Path | None,
) -> None:
    """Import customers from a .csv or .xlsx FILE as customer.registered events.

    Columns are recognised by common headers, Chinese ones too (会员ID, 姓名, 手机,
    生日, 性别, 地区, 城市, 会员等级, 标签 …). Phone and e-mail are sent only as keyed
    hashes (CRMSTREAM_PRIVACY_HASH_KEY). Bad rows are reported by row number.
    Exit status: 0 all imported; 1 some rows bad; 3 the broker did not take them all.
    """
    from storefront.importer import ColumnMapping, Importer  # noqa: PLC0415
    from storefront.sheet_import import SheetCheck, SheetReport, sheet_publisher  # noqa: PLC0415
    from storefront.sheets import RowError, open_sheet  # noqa: PLC0415

    def bad_row(number: int, reason: str) -> None:
        click.echo(f"row {number}: {reason}", err=True)

    try:
        with open_sheet(file) as sheet:
            mapped, unknown = ColumnMapping(_mapping(pairs)).resolve(sheet.headers)
        if unknown:
            click.echo(f"columns not imported: {', '.join(unknown)}", err=True)
        importer = Importer(
            shop=shop,
            source=f"import/{file.suffix.lower().lstrip('.')}",
            mapping=mapped,
            hash_key=settings.privacy_hash_key(),
        )
        check = SheetCheck.of(settings, importer)

        def checked(report: SheetReport) -> Iterator[tuple[Envelope, bytes]]:
            # Read again for each pass: a row at a time, never the whole sheet.
            with open_sheet(file) as sheet:
                yield from check.events(progress(sheet.rows(), "reading"), report)

        if strict:
            # Every row checked before the first is sent or written.
            report = SheetReport(on_bad=bad_row)
            for _event in checked(report):
                pass
            if report.bad_rows:
                click.echo(f"{report.bad_rows} bad row(s); --strict: nothing sent", err=True)
                sys.exit(EXIT_BAD_INPUT)
        report = SheetReport(on_bad=bad_row)
        if dry_run or out is not None:
            written = _write(checked(report), out)
            click.echo(
                f"{report.good} good row(s), {report.bad_rows} bad"
                + (f"; written to {written}" if written else "")
            )
            sys.exit(EXIT_BAD_INPUT if report.bad_rows else 0)
        with sheet_publisher(settings) as publisher:
            for valid, value in checked(report):
                publisher.publish_valid(valid, value)
    except RowError as exc:
        raise click.ClickException(str(exc)) from exc
    delivery = publisher.report
    finish(delivery.delivered, delivery.failed, delivery.errors, report.bad_rows)


def _write(events: Iterator[tuple[Envelope, bytes]], out: Path | None) -> Path | None:
    """The good events as JSON lines in ``out``, as they are checked; with no ``out``,
    only checked."""
    if out is None:
        for _event in events:
            pass
        return None
    with out.open("wb") as sink:
        for _valid, value in events:
            sink.write(value + b"\n")
    return out
