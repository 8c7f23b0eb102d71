"""Taxonomy tools: seeded sheets, reading filled sheets, and agreement on hand-worked label sets."""

import json
import math

import polars as pl
import pytest

from divpref.taxonomy.sheets import (
    CAUSES,
    annotator_agreement,
    format_votes,
    frequency_table,
    read_filled_sheet,
    sample_sheet,
    sheet_instructions,
)

V, F, S = frozenset({"verbosity"}), frozenset({"format"}), frozenset({"safety"})
VF = V | F
# Hand-worked example (see the comments in the tests for the arithmetic).
ANNOTATOR_1 = {"i1": V, "i2": F, "i3": VF, "i4": S}
ANNOTATOR_2 = {"i1": V, "i2": V, "i3": VF, "i4": S}
ANNOTATOR_3 = {"i1": V, "i2": F, "i3": V, "i4": S}


def test_two_annotators_kappa_alpha_and_frequencies():
    result = annotator_agreement({"ann1": ANNOTATOR_1, "ann2": ANNOTATOR_2})
    # Set keys v,f,vf,s vs v,v,vf,s: p_o = 3/4, p_e = (1*2 + 0 + 1*1 + 1*1)/16 = 1/4; kappa = (1/2)/(3/4).
    assert result.cohen_kappa_mean == pytest.approx(2 / 3)
    # MASI: d(v,f) = 1, d(v,vf) = 1 - 1/2 * 2/3 = 2/3. D_o = 1/4 (one disjoint item of four).
    # D_e over the 8 pooled values (v x3, f, vf x2, s x2): 2 * (3 + 6*2/3 + 6 + 2*2/3 + 2 + 4) / 56 = 61/84.
    assert result.krippendorff_alpha_masi == pytest.approx(1 - (1 / 4) / (61 / 84))  # = 40/61
    assert result.pairs_annotated_by_all == 4 and result.pairs_excluded == 0
    # verbosity: 2/4 and 3/4 -> 5/8; format: 2/4 and 1/4 -> 3/8; safety 1/4 each.
    assert result.cause_frequency["verbosity"] == pytest.approx(5 / 8)
    assert result.cause_frequency["format"] == pytest.approx(3 / 8)
    assert result.cause_frequency["safety"] == pytest.approx(1 / 4)
    assert sum(result.cause_frequency[c] for c in CAUSES if c not in {"verbosity", "format", "safety"}) == 0


def test_three_annotators_average_kappa_over_pairs():
    result = annotator_agreement({"ann1": ANNOTATOR_1, "ann2": ANNOTATOR_2, "ann3": ANNOTATOR_3})
    # ann1-ann3: p_o 3/4, p_e 1/4 -> 2/3; ann2-ann3: p_o 1/2, p_e (2*2 + 1)/16 = 5/16 -> (3/16)/(11/16).
    assert result.cohen_kappa_by_pair == pytest.approx(
        {"ann1 vs ann2": 2 / 3, "ann1 vs ann3": 2 / 3, "ann2 vs ann3": 3 / 11}
    )
    assert result.cohen_kappa_mean == pytest.approx((2 / 3 + 2 / 3 + 3 / 11) / 3)
    assert -1 <= result.krippendorff_alpha_masi < 1


def test_perfect_agreement_gives_alpha_one():
    result = annotator_agreement({"a": ANNOTATOR_1, "b": dict(ANNOTATOR_1)})
    assert result.cohen_kappa_mean == pytest.approx(1.0)
    assert result.krippendorff_alpha_masi == pytest.approx(1.0)


def test_pairs_not_annotated_by_everyone_are_excluded_and_counted():
    first = {**ANNOTATOR_1, "i5": frozenset(), "i6": V}
    second = {**ANNOTATOR_2, "i5": V}
    result = annotator_agreement({"a": first, "b": second})
    assert result.pairs_annotated_by_all == 4
    assert result.pairs_excluded == 2
    assert result.cohen_kappa_mean == pytest.approx(2 / 3)
    table = frequency_table("multipref", result)
    assert table.height == len(CAUSES) and set(table["pairs"]) == {4}
    assert json.loads(result.to_json())["pairs_excluded"] == 2


def test_agreement_needs_two_annotators_with_common_pairs():
    with pytest.raises(ValueError, match="at least two"):
        annotator_agreement({"a": ANNOTATOR_1})
    with pytest.raises(ValueError, match="no pair is annotated"):
        annotator_agreement({"a": {"i1": V}, "b": {"i2": V}})


def _pairs(n_diverging: int, n_other: int) -> pl.DataFrame:
    ids = [f"d{i:03d}" for i in range(n_diverging)] + [f"o{i:03d}" for i in range(n_other)]
    return pl.DataFrame(
        {
            "pair_id": ids,
            "prompt": [f"prompt {i}" for i in ids],
            "response_a": ["A"] * len(ids),
            "response_b": ["B"] * len(ids),
            "strengths": [[2, -1, 0, 1]] * len(ids),
            "agreement": ["diverging"] * n_diverging + ["high_agreement_pref"] * n_other,
        }
    )


def test_sheet_is_a_seeded_sample_of_diverging_pairs():
    pairs = _pairs(30, 20)
    sheet = sample_sheet(pairs, size=10, seed=3)
    assert sheet.height == 10
    assert all(pair_id.startswith("d") for pair_id in sheet["pair_id"])
    assert sheet["pair_id"].n_unique() == 10
    assert list(sheet.columns) == ["pair_id", "prompt", "response_a", "response_b", "votes", *CAUSES, "notes"]
    assert set(sheet["votes"]) == {"+2 -1 0 +1"}
    assert sheet.equals(sample_sheet(pairs.reverse(), size=10, seed=3))  # row order does not matter
    assert not sheet["pair_id"].equals(sample_sheet(pairs, size=10, seed=4)["pair_id"])


def test_sheet_takes_all_when_too_few_diverging_pairs():
    assert sample_sheet(_pairs(4, 5), size=10, seed=0).height == 4
    assert sample_sheet(_pairs(0, 5), size=10, seed=0).height == 0


def test_format_votes():
    assert format_votes([2, -2, 0, -1]) == "+2 -2 0 -1"


def test_instructions_name_every_cause_and_the_config_key():
    text = sheet_instructions("helpsteer2", "helpsteer2_sheet.csv")
    assert all(f"`{cause}`" in text for cause in CAUSES)
    assert "filled_sheets: helpsteer2" in text


def test_read_filled_sheet_marks_and_errors(tmp_path):
    sheet = sample_sheet(_pairs(3, 0), size=3, seed=0).with_columns(
        pl.Series("verbosity", ["1", "x", ""]), pl.Series("format", ["0", "TRUE", ""])
    )
    path = tmp_path / "ann1.csv"
    sheet.write_csv(path)
    labels = read_filled_sheet(path)
    assert labels == {"d000": V, "d001": VF, "d002": frozenset()}

    sheet.with_columns(pl.Series("safety", ["", "maybe", ""])).write_csv(path)
    with pytest.raises(
        ValueError, match=r"ann1.csv: pair_id 'd001', column 'safety': unreadable mark 'maybe'"
    ):
        read_filled_sheet(path)
    sheet.drop("errors").write_csv(path)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['errors'\]"):
        read_filled_sheet(path)
    pl.concat([sheet, sheet.head(1)]).write_csv(path)
    with pytest.raises(ValueError, match="'d000' appears twice"):
        read_filled_sheet(path)


def test_round_trip_from_sheet_to_agreement(tmp_path):
    sheet = sample_sheet(_pairs(4, 0), size=4, seed=0)
    paths = []
    for name, labels in (("ann1", ANNOTATOR_1), ("ann2", ANNOTATOR_2)):
        ordered = [labels[f"i{i}"] for i in range(1, 5)]
        filled = sheet.with_columns(
            *(pl.Series(cause, ["1" if cause in s else "" for s in ordered]) for cause in CAUSES)
        )
        paths.append(tmp_path / f"{name}.csv")
        filled.write_csv(paths[-1])
    result = annotator_agreement({path.stem: read_filled_sheet(path) for path in paths})
    assert result.krippendorff_alpha_masi == pytest.approx(40 / 61)
    assert not math.isnan(result.cohen_kappa_mean)


@pytest.mark.slow
def test_taxonomy_agreement_rule_runs_from_configured_sheets(tmp_path):
    from conftest import copy_workflow, run_snakemake

    workdir = copy_workflow(tmp_path / "workflow")
    sheet = sample_sheet(_pairs(4, 0), size=4, seed=0)
    paths = []
    for name, labels in (("alice", ANNOTATOR_1), ("bob", ANNOTATOR_2), ("carol", ANNOTATOR_3)):
        ordered = [labels[f"i{i}"] for i in range(1, 5)]
        filled = sheet.with_columns(
            *(pl.Series(cause, ["1" if cause in s else "" for s in ordered]) for cause in CAUSES)
        )
        paths.append(f"filled/{name}.csv")
        (workdir / "filled").mkdir(exist_ok=True)
        filled.write_csv(workdir / paths[-1])
    (workdir / "sheets.yaml").write_text(json.dumps({"taxonomy": {"filled_sheets": {"multipref": paths}}}))
    dry = run_snakemake(workdir, "--configfile", "sheets.yaml", "-n", "--quiet", "rules")
    assert "taxonomy_agreement" in dry.stdout  # part of the default target once two sheets are configured
    run_snakemake(
        workdir, "--configfile", "sheets.yaml", "--cores", "1", "results/taxonomy/multipref_agreement.json"
    )
    result = json.loads((workdir / "results/taxonomy/multipref_agreement.json").read_text())
    assert result["annotators"] == ["alice", "bob", "carol"]
    assert result["cohen_kappa_mean"] == pytest.approx((2 / 3 + 2 / 3 + 3 / 11) / 3)
    frequencies = pl.read_csv(workdir / "results/taxonomy/multipref_cause_frequencies.csv")
    assert frequencies.filter(pl.col("cause") == "verbosity")["frequency"].item() == pytest.approx(
        (2 / 4 + 3 / 4 + 2 / 4) / 3  # alice i1 i3, bob i1 i2 i3, carol i1 i3
    )
