"""A forecasts file dropped into the inbox, through the real sensor and asset (SPEC §2–4)."""

from __future__ import annotations

import csv
import struct
from decimal import Decimal

import dagster as dg
import pytest
import sqlalchemy as sa

from iska_pipelines.lib.db.schema import forecasts as forecasts_table
from iska_pipelines_tests.conftest import sample_path
from iska_pipelines_tests.driver import materialization_metadata

HEADER = "gid,lat,lon,fcat24,fcat48\n"


def grid_csv(rows: list[str], header: str = HEADER) -> str:
    return header + "".join(row + "\n" for row in rows)


def good_rows(count: int, start: int = 1) -> list[str]:
    return [
        f"{gid},{5 + gid / 1000:.4f},{-1 + gid / 1000:.4f},0.{gid % 10}000,0.5"
        for gid in range(start, start + count)
    ]


def fcat24(iska, gid: int) -> Decimal:
    with iska.engine.connect() as connection:
        return connection.execute(
            sa.select(forecasts_table.c.fcat24).where(forecasts_table.c.gid == gid)
        ).scalar_one()


def checks_of(result: dg.ExecuteInProcessResult) -> dict[str, tuple[bool, str]]:
    return {e.check_name: (e.passed, e.severity.value) for e in result.get_asset_check_evaluations()}


def refused_rows(iska, name: str, kind: str = "forecasts") -> list[dict]:
    path = iska.folders.archive / kind / f"{name}.rejected.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def assert_refused_whole(iska, result, name: str, says: str, kind: str = "forecasts") -> None:
    assert not result.success
    rejected = iska.folders.rejected / kind / name
    error = rejected.with_name(name + ".error.txt")
    assert rejected.exists() and error.exists()
    assert says in error.read_text()
    assert not (iska.folders.inbox / kind / name).exists()
    assert iska.scalar("SELECT outcome FROM ingested_files WHERE name = :n", n=name) == "rejected"
    steps = [e for e in result.all_events if e.event_type_value == "STEP_RESTARTED"]
    assert steps == [], "a refused file must not be retried"


def test_the_ghana_grid_lands_whole_with_every_field_right(iska):
    result = iska.ingest(sample_path("forecasts_ghana.csv"), folder="forecasts")
    assert result.success
    metadata = materialization_metadata(result)
    assert metadata["dagster/row_count"] == 3128
    assert (
        metadata["rows_in"],
        metadata["rows_inserted"],
        metadata["rows_updated"],
        metadata["rows_refused"],
    ) == (3128, 3128, 0, 0)
    assert metadata["archive_path"].endswith("archive/forecasts/forecasts_ghana.csv")
    assert checks_of(result) == {
        "no_refused_rows": (True, "WARN"),
        "gid_unique": (True, "ERROR"),
        "coordinates_in_range": (True, "ERROR"),
    }
    with sample_path("forecasts_ghana.csv").open() as handle:
        expected = {int(r["gid"]): r for r in csv.DictReader(handle)}
    stored = iska.rows("SELECT gid, lat, lon, fcat24, fcat48, is_active FROM forecasts")
    assert len(stored) == 3128
    for gid, lat, lon, fcat24, fcat48, active in stored:
        row = expected[gid]
        assert (lat, lon) == (float(row["lat"]), float(row["lon"]))
        assert Decimal(str(fcat24)) == Decimal(row["fcat24"])
        assert Decimal(str(fcat48)) == Decimal(row["fcat48"])
        assert active
    assert not list(iska.folders.inbox.rglob("*.csv"))
    assert iska.scalar("SELECT rows_applied FROM ingested_files") == 3128


def test_the_same_file_dropped_again_is_not_applied_twice(iska):
    iska.ingest(sample_path("forecasts_ghana.csv"), folder="forecasts")
    before = iska.scalar("SELECT max(updated_at) FROM forecasts")
    iska.drop(sample_path("forecasts_ghana.csv"), folder="forecasts")
    assert iska.process() == []
    assert (iska.folders.archive / "forecasts" / "duplicates" / "forecasts_ghana.csv").exists()
    assert iska.scalar("SELECT max(updated_at) FROM forecasts") == before
    assert iska.scalar("SELECT count(*) FROM ingested_files") == 1


def test_identical_content_under_another_name_is_a_duplicate_too(iska):
    iska.ingest(grid_csv(good_rows(3)), name="grid_a.csv", folder="forecasts")
    iska.drop(grid_csv(good_rows(3)), name="forecast_b.csv")
    assert iska.process() == []
    assert (iska.folders.archive / "forecasts" / "duplicates" / "forecast_b.csv").exists()


def test_a_modified_file_with_the_same_name_is_a_new_partition_with_new_values(iska):
    iska.ingest(grid_csv(good_rows(3)), name="grid.csv", folder="forecasts")
    changed = grid_csv(["1,5.0010,-0.9990,0.9999,0.1234", *good_rows(1, start=4)])
    result = iska.ingest(changed, name="grid.csv", folder="forecasts")
    metadata = materialization_metadata(result)
    assert (metadata["rows_inserted"], metadata["rows_updated"]) == (1, 1)
    assert fcat24(iska, 1) == Decimal("0.9999")
    assert iska.scalar("SELECT count(*) FROM forecasts") == 4
    assert len(iska.instance.get_dynamic_partitions("forecast_files")) == 2
    assert len(list((iska.folders.archive / "forecasts").glob("grid*.csv"))) == 2


def test_a_zero_byte_file_is_refused_whole(iska):
    result = iska.ingest(b"", name="empty.csv", folder="forecasts")
    assert_refused_whole(iska, result, "empty.csv", "empty")


def test_binary_garbage_is_refused_whole(iska):
    garbage = bytes(range(256)) * 20
    result = iska.ingest(garbage, name="garbage.csv", folder="forecasts")
    assert_refused_whole(iska, result, "garbage.csv", "garbage.csv")


def test_a_header_only_file_is_a_valid_no_op(iska):
    result = iska.ingest(HEADER, name="header.csv", folder="forecasts")
    assert result.success
    assert materialization_metadata(result)["rows_in"] == 0
    assert (iska.folders.archive / "forecasts" / "header.csv").exists()


def test_a_missing_fcat48_column_refuses_the_file_and_names_the_column(iska):
    result = iska.ingest("gid,lat,lon,fcat24\n1,5,0,0.1\n", name="nofcat.csv", folder="forecasts")
    assert_refused_whole(iska, result, "nofcat.csv", "fcat48")
    assert iska.scalar("SELECT count(*) FROM forecasts") == 0


@pytest.mark.parametrize(
    "bad_row, reason",
    [
        ("x7,5.0,0.0,0.1,0.2", "invalid_gid"),
        ("7,91,0.0,0.1,0.2", "invalid_lat"),
        ("7,5.0,-181,0.1,0.2", "invalid_lon"),
        ("7,5.0,0.0,abc,0.2", "invalid_fcat"),
    ],
)
def test_a_bad_row_is_refused_with_its_reason_and_the_rest_applied(iska, bad_row, reason):
    result = iska.ingest(grid_csv([*good_rows(9, start=10), bad_row]), name="g.csv", folder="forecasts")
    assert result.success
    metadata = materialization_metadata(result)
    assert (metadata["rows_in"], metadata["rows_applied"], metadata["rows_refused"]) == (10, 9, 1)
    assert metadata[f"refused_{reason}"] == 1
    assert checks_of(result)["no_refused_rows"] == (False, "WARN")
    [row] = refused_rows(iska, "g.csv")
    assert row["reason"] == reason and ",".join(list(row.values())[:5]) == bad_row
    assert iska.scalar("SELECT count(*) FROM forecasts") == 9


def test_a_repeated_gid_keeps_the_last_row_and_refuses_the_earlier(iska):
    rows = [*good_rows(8, start=1), "100,5.0,0.0,0.1000,0.2", "100,5.0,0.0,0.3000,0.4"]
    result = iska.ingest(grid_csv(rows), name="dups.csv", folder="forecasts")
    assert materialization_metadata(result)["refused_duplicate_in_file"] == 1
    assert fcat24(iska, 100) == Decimal("0.3")
    assert refused_rows(iska, "dups.csv")[0]["fcat24"] == "0.1000"


def test_bom_crlf_and_quoted_fields_are_read(iska):
    content = '\ufeff"gid","lat","lon","fcat24","fcat48"\r\n"1","5.5","-1.5","0.1234","0.5"\r\n'
    result = iska.ingest(content.encode("utf-8"), name="bom.csv", folder="forecasts")
    assert result.success
    assert iska.rows("SELECT gid, lat, lon FROM forecasts") == [(1, 5.5, -1.5)]


def test_extra_and_reordered_columns_are_read_by_header_name(iska):
    content = " FCAT48 ,note,Lon,gid,LAT,fcat24\n0.5,hello,-1.5,7,5.5,0.25\n"
    result = iska.ingest(content, name="reordered.csv", folder="forecasts")
    assert result.success
    assert iska.rows("SELECT gid, lat, lon FROM forecasts") == [(7, 5.5, -1.5)]
    assert fcat24(iska, 7) == Decimal("0.25")


def test_points_given_only_as_geom_wkt_and_hex_ewkb_are_read(iska):
    ewkb = struct.pack("<BIIdd", 1, 0x20000001, 4326, -1.25, 6.75).hex().upper()
    wkb = struct.pack(">BIdd", 0, 1, 0.5, 7.5).hex()
    content = (
        "gid,geom,fcat24,fcat48\n"
        "1,SRID=4326;POINT(-3.3 4.5),0.1,0.2\n"
        "2,POINT (1.1 10.9),0.1,0.2\n"
        f"3,{ewkb},0.1,0.2\n"
        f"4,{wkb},0.1,0.2\n"
    )
    result = iska.ingest(content, name="geom.csv", folder="forecasts")
    assert result.success
    assert iska.rows("SELECT gid, lat, lon FROM forecasts ORDER BY gid") == [
        (1, 4.5, -3.3),
        (2, 10.9, 1.1),
        (3, 6.75, -1.25),
        (4, 7.5, 0.5),
    ]


def test_an_unreadable_geom_is_refused_as_invalid_geom(iska):
    content = (
        "gid,geom,fcat24,fcat48\n"
        + "".join(f"{g},POINT({g / 10} 5),0.1,0.2\n" for g in range(1, 10))
        + "10,POINT(oops),0.1,0.2\n"
    )
    result = iska.ingest(content, name="geom.csv", folder="forecasts")
    assert materialization_metadata(result)["refused_invalid_geom"] == 1


def test_thirty_percent_bad_rows_refuse_the_whole_file(iska):
    rows = good_rows(7) + ["x,5,0,0.1,0.2"] * 3
    result = iska.ingest(grid_csv(rows), name="bad30.csv", folder="forecasts")
    assert_refused_whole(iska, result, "bad30.csv", "3 of 10 rows refused")
    assert iska.scalar("SELECT count(*) FROM forecasts") == 0


def test_a_file_still_being_written_is_not_picked_up(iska):
    iska.drop(grid_csv(good_rows(3)), name="grid.csv", folder="forecasts", settled=False)
    iska.drop(grid_csv(good_rows(3)), name="grid2.csv.part", folder="forecasts")
    result = iska.tick()
    assert result.run_requests == []
    assert "1 still being written" in result.skip_reason.skip_message
    assert (iska.folders.inbox / "forecasts" / "grid.csv").exists()


def test_a_connection_lost_mid_upsert_applies_nothing_and_the_retry_applies_once(iska):
    iska.ingest(grid_csv(["100001,4.5,-3.3,0.1111,0.2222"]), name="seed.csv", folder="forecasts")
    engine = iska.engine
    seen_at_retry = []
    kills = []

    def lose_connection(connection, cursor, statement, parameters, context, executemany):
        if not statement.lstrip().startswith("UPDATE forecasts"):
            return
        if kills:  # the retry: nothing of the first attempt may be visible
            with sa.create_engine(engine.url).connect() as observer:
                seen_at_retry.append(
                    tuple(
                        observer.execute(
                            sa.text(
                                "SELECT count(*), sum(CASE WHEN fcat24 = 0.1111 THEN 1 ELSE 0 END) FROM forecasts"
                            )
                        ).one()
                    )
                )
            seen_at_retry.append((iska.folders.inbox / "forecasts" / "forecasts_ghana.csv").exists())
            return
        kills.append(statement)
        if connection.dialect.name == "postgresql":
            pid = connection.connection.dbapi_connection.get_backend_pid()
            with sa.create_engine(engine.url, isolation_level="AUTOCOMMIT").connect() as killer:
                killer.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        else:
            import sqlite3

            raise sqlite3.OperationalError("disk I/O error (connection lost)")

    sa.event.listen(engine, "before_cursor_execute", lose_connection)
    try:
        result = iska.ingest(sample_path("forecasts_ghana.csv"), folder="forecasts")
    finally:
        sa.event.remove(engine, "before_cursor_execute", lose_connection)
    assert len(kills) == 1
    assert seen_at_retry == [(1, 1), True], "only the earlier file's row, unchanged, and the file waiting"
    assert result.success
    assert any(e.event_type_value == "STEP_RESTARTED" for e in result.all_events)
    assert iska.scalar("SELECT count(*) FROM forecasts") == 3128
    assert iska.scalar("SELECT count(*) FROM ingested_files") == 2
    assert fcat24(iska, 100001) == Decimal("0.7513")
    assert (iska.folders.archive / "forecasts" / "forecasts_ghana.csv").exists()


def test_re_running_an_applied_partition_gives_the_same_result(iska):
    result = iska.ingest(grid_csv(good_rows(5)), name="grid.csv", folder="forecasts")
    key = result.dagster_run.tags["dagster/partition"]
    before = iska.rows("SELECT gid, lat, lon, fcat24, fcat48, is_active FROM forecasts ORDER BY gid")
    again = iska.run(key)
    assert again.success
    assert materialization_metadata(again)["rows_updated"] == 0  # nothing changed, nothing written
    assert iska.rows("SELECT gid, lat, lon, fcat24, fcat48, is_active FROM forecasts ORDER BY gid") == before


def test_re_running_a_whole_grid_file_leaves_every_row_as_it_was(iska):
    """10,000 rows: on PostgreSQL the file rewrites the table, and still keeps every row as it was."""
    from iska_pipelines.lib.forecasts.storage import REWRITE_MIN_ROWS
    from iska_pipelines_tests.test_defs_subscriptions import every_table

    result = iska.ingest(grid_csv(good_rows(REWRITE_MIN_ROWS)), name="grid.csv", folder="forecasts")
    before = every_table(iska.engine)
    assert iska.run(result.dagster_run.tags["dagster/partition"]).success
    assert every_table(iska.engine) == before
