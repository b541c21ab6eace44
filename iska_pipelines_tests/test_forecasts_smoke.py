from iska_pipelines_tests.conftest import fixture_path
from iska_pipelines_tests.driver import materialization_metadata


def test_smoke(iska):
    result = iska.ingest(fixture_path("forecasts_ghana.csv"), folder="forecasts")
    assert result.success
    print(materialization_metadata(result))
    print(result.get_asset_check_evaluations())
