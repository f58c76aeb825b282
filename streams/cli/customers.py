"""`crmstream import`: a merchant's existing customers from CSV or Excel."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from crmstream.settings import Settings
from streams.cli.events import EXIT_BAD_INPUT, finish
from streams.cli.names import shop_name
from streams.cli.progress import progress

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
    from schemas.decode import Decoder  # noqa: PLC0415
    from schemas.errors import InvalidEventError  # noqa: PLC0415
    from storefront.importer import ColumnMapping, Importer, RowError, read_rows  # noqa: PLC0415
    from storefront.publisher import Publisher, encode  # noqa: PLC0415

    try:
        headers, rows = read_rows(file)
        mapped, unknown = ColumnMapping(_mapping(pairs)).resolve(headers)
    except RowError as exc:
        raise click.ClickException(str(exc)) from exc
    if unknown:
        click.echo(f"columns not imported: {', '.join(unknown)}", err=True)
    importer = Importer(
        shop=shop,
        source=f"import/{file.suffix.lower().lstrip('.')}",
        mapping=mapped,
        hash_key=settings.privacy_hash_key(),
    )
    decoder = Decoder()
    not_after = decoder.not_after(datetime.now(UTC))
    good: list[bytes] = []
    bad = 0
    for row in progress(rows, "reading"):
        try:
            value = encode(importer.event(row))
            decoder.require(value, not_after)
        except (RowError, InvalidEventError) as exc:
            bad += 1
            click.echo(f"row {row.number}: {exc}", err=True)
            continue
        good.append(value)
    if bad and strict:
        click.echo(f"{bad} bad row(s); --strict: nothing sent", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if dry_run or out is not None:
        if out is not None:
            out.write_bytes(b"".join(line + b"\n" for line in good))
        click.echo(f"{len(good)} good row(s), {bad} bad" + (f"; written to {out}" if out else ""))
        sys.exit(EXIT_BAD_INPUT if bad else 0)
    with Publisher(settings) as publisher:
        for value in progress(good, "publishing"):
            publisher.publish_json(value)
    report = publisher.report
    finish(report.delivered, report.failed, report.errors, bad)
