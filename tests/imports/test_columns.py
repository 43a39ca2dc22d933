from minicrm.imports.columns import COLUMN_HELP, COLUMNS


def test_the_columns_are_the_fields_of_the_ingestion_rows() -> None:
    assert COLUMNS["customers"].required == ("external_id",)
    assert COLUMNS["orders"].required == (
        "external_id",
        "customer_external_id",
        "amount",
        "ordered_at",
    )
    assert set(COLUMNS["orders"].optional) == {"currency", "status"}


def test_every_column_is_explained_on_the_import_page() -> None:
    for kind, spec in COLUMNS.items():
        assert set(COLUMN_HELP[kind]) == set(spec.all), kind
