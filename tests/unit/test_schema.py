import pytest
import yaml

from app.schema import DatasetSchema


def test_uci_schema_names_and_codes(schema):
    assert schema.feature_names[:5] == ["limit_bal", "sex", "education", "marriage", "age"]
    assert [f"pay_{i}" for i in (0, 2, 3, 4, 5, 6)] == schema.feature_names[5:11]
    assert schema.feature_names[11:] == [f"bill_amt{i}" for i in range(1, 7)] + [f"pay_amt{i}" for i in range(1, 7)]
    assert len(schema.features) == 23
    codes = schema.source_columns
    assert codes["X1"] == "limit_bal" and codes["X23"] == "pay_amt6" and codes["Y"] == "default"
    assert schema.target.name == "default" and schema.is_binary and schema.target.bad_class == 1
    assert schema.bad_index == 1


def test_undocumented_codes_are_declared_not_silent(schema):
    edu = schema.feature("education")
    assert edu.remap == {0: 4, 5: 4, 6: 4} and edu.remap_reason
    assert schema.feature("marriage").remap == {0: 3}
    assert schema.duplicates == "drop"


def test_multiclass_schema(schema3):
    assert schema3.classes == ["Good", "Standard", "Poor"]
    assert schema3.bad_index == 2 and not schema3.is_binary
    assert schema3.feature_names == DatasetSchema.load(
        "data/schemas/uci_credit.yaml").feature_names


def test_hash_is_stable_and_content_based(schema, tmp_path):
    raw = schema.to_dict()
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert DatasetSchema.load(p).sha256 == schema.sha256
    raw["features"][0]["max"] = 1
    assert DatasetSchema.from_dict(raw).sha256 != schema.sha256


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r["target"].update(bad_class=7), "bad_class"),
    (lambda r: r["features"][1].update(categories=[]), "categories"),
    (lambda r: r["features"][2].update(remap={0: 9}), "remap targets"),
    (lambda r: r["features"][2].pop("remap_reason"), "remap_reason"),
    (lambda r: r["features"][0].update(min=5, max=1), "min > max"),
    (lambda r: r["features"].append(dict(r["features"][0])), "duplicate"),
])
def test_invalid_schemas_are_refused(schema, mutate, message):
    raw = schema.to_dict()
    mutate(raw)
    with pytest.raises(ValueError, match=message):
        DatasetSchema.from_dict(raw)


def test_missing_schema_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="schema file not found"):
        DatasetSchema.load(tmp_path / "nope.yaml")


def test_json_roundtrip_keeps_integer_codes(schema):
    import json

    back = DatasetSchema.from_dict(json.loads(json.dumps(schema.to_dict())))
    assert back.feature("education").remap == {0: 4, 5: 4, 6: 4}
    assert back.feature("sex").labels == {1: "male", 2: "female"}
    assert back == schema and back.sha256 == schema.sha256
