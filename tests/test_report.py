import base64
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from brainkit.errors import DataError
from brainkit.report.html import format_value, write_report
from brainkit.report.plots import RetrievalGrid

VOID = {"meta", "img", "br", "hr", "link", "input"}


class _TagChecker(HTMLParser):
    """Fails on a closing tag that does not match the open one; collects img sources."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.sources: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs)["src"])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1:]}>"
        self.stack.pop()


def _grid(n_queries: int = 3, k: int = 4, height: int = 9, width: int = 11, seed: int = 0) -> RetrievalGrid:
    rng = np.random.default_rng(seed)
    correct = np.zeros((n_queries, k), dtype=bool)
    correct[0, 0] = correct[1, 2] = True
    return RetrievalGrid(
        query_images=rng.integers(0, 256, (n_queries, height, width, 3), dtype=np.uint8),
        retrieved_images=rng.integers(0, 256, (n_queries, k, height, width, 3), dtype=np.uint8),
        correct=correct,
    )


def _inputs():
    table = [
        {"method": "lite_mind", "params": 15_700_000, "train_time_s": 812.25, "fmri_to_image/top1": 0.4125,
         "fmri_to_image/top1_chance": 0.001, "fmri_to_image/300way_top1_mean": 0.9461,
         "fmri_to_image/300way_top1_sd": 0.0123, "fmri_to_image/300way_top1_chance": 1 / 300},
        {"method": "ridge <baseline>", "params": 2_000_000, "train_time_s": 3.5, "fmri_to_image/top1": 0.0831,
         "fmri_to_image/top1_chance": 0.001},
    ]  # fmt: skip
    curves = {
        "lite_mind": [
            {"epoch": e, "train_loss": 2.0 / e, "val_top1": 0.1 * e, "lr": 1e-4} for e in range(1, 6)
        ],
        "mlp": [
            {"epoch": e, "train_loss": 2.5 / e, "val_top1": 0.05 * e, "note": "text is skipped"}
            for e in (1, 2, 3)
        ],
    }
    retrieval = {"lite_mind": _grid(), "mlp": _grid(2, 3, seed=1)}
    notes = ["Lite-Mind beats ridge & the MLP on top-1.", "Chance is 1/982."]
    return table, curves, retrieval, notes


def test_tiny_report_is_valid_self_contained_html(tmp_path):
    table, curves, retrieval, notes = _inputs()
    path = write_report(tmp_path / "run" / "report.html", "Run <1>", table, curves, retrieval, notes)
    text = path.read_text()
    checker = _TagChecker()
    checker.feed(text)
    checker.close()
    assert checker.stack == [], f"unclosed tags {checker.stack}"
    assert text.startswith("<!DOCTYPE html>")
    assert "<title>Run &lt;1&gt;</title>" in text
    # human labels, shares as percentages with their chance and sd (in points); other numbers as they are
    for value in ("Lite-Mind", "15,700,000", "812.2", "41.2%", "94.6% &plusmn; 1.2", "(chance 0.10%)",
                  "(chance 0.33%)", "ridge &lt;baseline&gt;", "8.3%", "<th>fMRI → image, top-1</th>",
                  "<th>fMRI → image, 300-way top-1</th>", "<th>parameters</th>"):  # fmt: skip
        assert value in text, value
    assert "Lite-Mind beats ridge &amp; the MLP on top-1." in text
    assert len(re.findall(r"<tr>", text)) == 3  # header + 2 methods
    headers = re.findall(r"<th>(.*?)</th>", text)
    assert not any("_" in h or "/" in h for h in headers), headers  # no code keys
    assert "top-1 chance</th>" not in text and "300-way top-1 sd</th>" not in text
    # two embedded PNGs, identical to the files saved beside the HTML
    assert len(checker.sources) == 3  # every method against chance, the curves, the retrieval grids
    saved = sorted(p.name for p in path.parent.iterdir())
    assert saved == ["report.html", "report_curves.png", "report_methods.png", "report_retrieval.png"]
    embedded = {base64.b64decode(src.split(",", 1)[1]) for src in checker.sources}
    assert embedded == {(path.parent / name).read_bytes() for name in saved[1:]}
    assert all(png.startswith(b"\x89PNG") for png in embedded)


def test_report_without_curves_or_grids_has_no_images(tmp_path):
    path = write_report(tmp_path / "r.html", "Empty", [], {}, {}, [])
    assert "<img" not in path.read_text() and "No results." in path.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]


def test_format_value():
    assert format_value(1234567) == "1,234,567"
    assert format_value(np.float32(0.123456)) == "0.1235"
    assert format_value(None) == "-" and format_value(True) == "True" and format_value("ab") == "ab"


def test_bad_grid_shapes_raise():
    grid = _grid()
    with pytest.raises(DataError, match=r"query_images has shape \(3, 9, 11\); expected \(n_queries, height"):
        RetrievalGrid(grid.query_images[..., 0], grid.retrieved_images, grid.correct)
    with pytest.raises(
        DataError, match=r"retrieved_images has shape \(2, 4, 9, 11, 3\); expected \(3, k, 9, 11"
    ):
        RetrievalGrid(grid.query_images, grid.retrieved_images[:2], grid.correct)
    with pytest.raises(DataError, match=r"correct has shape \(3, 3\) and dtype bool; expected bool \(3, 4\)"):
        RetrievalGrid(grid.query_images, grid.retrieved_images, grid.correct[:, :3])
    with pytest.raises(DataError, match=r"query_images has dtype float64; expected uint8"):
        RetrievalGrid(grid.query_images / 255.0, grid.retrieved_images, grid.correct)


def test_bad_inputs_raise_and_write_nothing(tmp_path):
    table, curves, retrieval, notes = _inputs()
    with pytest.raises(DataError, match=r"curves\['mlp'\]\[0\] has keys \['loss'\]; expected an 'epoch' key"):
        write_report(tmp_path / "r.html", "t", table, {"mlp": [{"loss": 1.0}]}, retrieval, notes)
    with pytest.raises(DataError, match=r"retrieval\['mlp'\] is a ndarray; expected a RetrievalGrid"):
        write_report(tmp_path / "r.html", "t", table, curves, {"mlp": np.zeros(3)}, notes)
    with pytest.raises(DataError, match=r"table\[0\]\['top1'\] is a list; expected a number"):
        write_report(tmp_path / "r.html", "t", [{"top1": [0.1]}], curves, retrieval, notes)
    with pytest.raises(DataError, match=r"notes must be a list of strings"):
        write_report(tmp_path / "r.html", "t", table, curves, retrieval, "one note")
    assert list(tmp_path.iterdir()) == []


def test_report_header_names_version_command_machine_and_config(tmp_path):
    from brainkit import __version__
    from brainkit.report.html import write_report

    (tmp_path / "config.json").write_text("{}")
    page = write_report(tmp_path / "report.html", "t", [{"method": "m", "top1": 0.5}], {}, {}, []).read_text()
    assert f"by brainkit {__version__}" in page and "Command: " in page and "Machine: " in page
    assert "torch " in page and "Config: config.json beside this page" in page


def test_methods_figure_puts_every_method_beside_chance():
    from brainkit.report.plots import methods_figure

    table, _, _, _ = _inputs()
    figure = methods_figure(table)
    axes = [a for a in figure.axes if a.get_visible()]
    assert len(axes) == 2  # the two share columns; sizes and times are not scores
    top1 = axes[0]
    assert top1.get_xlabel() == "fMRI → image, top-1 (%)"
    assert [t.get_text() for t in top1.get_yticklabels()] == ["Lite-Mind", "ridge <baseline>"]
    (chance,) = [line for line in top1.get_lines() if line.get_linestyle() == "--"]
    assert chance.get_xdata()[0] == pytest.approx(0.1)  # 0.001 as a percentage
    assert methods_figure(table[:1]) is None  # one method: nothing to compare
