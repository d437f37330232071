"""The model zoo's section of the reports (harness/report/zoo.py, rendered in matrix.md and index.html)."""
from __future__ import annotations

from harness.verdicts.outcomes import CellResult
from harness.report import html, markdown
from harness.report.model import Run
from harness.report.zoo import documented_text, zoo_rows

EPS32 = 2.0 ** -23


def _cell(case: str, check: str, outcome: str = "pass", pytorch: str = "1.13.0a0", details: dict | None = None,
          features: tuple[str, ...] = ("zoo",)) -> CellResult:
    return CellResult(id=f"{case}::{check}::pt{pytorch}::ts0.107.0::cpu::ours::dat", case=case, check=check,
                      pytorch=pytorch, torchsharp="0.107.0", device="cpu", codec="ours", outcome=outcome,
                      features=list(features), details=details or {})


def _run(cells: list[CellResult]) -> Run:
    run = Run(run_id="zoo-test", started="2026-12-05T15:00:00+00:00", provenance={})
    run.cells = cells
    return run


def _eval(scale: float, py_eps: float, ts_eps: float) -> dict:
    return {"zoo_output_scale": scale, "reference": {"PyTorch": {"max_abs": py_eps * EPS32 * scale},
                                                     "TorchSharp": {"max_abs": ts_eps * EPS32 * scale}}}


def test_rows_sum_each_models_checks_over_implementations_and_place_optimizer_cells_under_their_model():
    cells = [
        _cell("zoo_resnet18", "zoo_structure"),
        _cell("zoo_resnet18", "functional", details=_eval(0.2, 3.0, 5.0)),
        _cell("zoo_resnet18", "functional", pytorch="2.6.0", details=_eval(0.25, 2.0, 7.5)),
        _cell("zoo_resnet18", "zoo_outputs_ts2py", "fail", details=_eval(0.1, 1.0, 900.0)),
        _cell("zoo_resnet18_sgd", "continue_py2ts"), _cell("zoo_resnet18_sgd", "continue_ts2py"),
        _cell("zoo_resnet18_adamw", "continue_ts2py", "xfail",
              details={"expected_failure": {"finding": "some-finding"}}),
        _cell("zoo_resnet18", "zoo_train_forward", "skip"),          # skipped: not counted
        _cell("lenet1", "functional", features=("conv",)),            # not the zoo's
        _cell("zoo_resnet18", "py2ts"),                               # a check the section does not show
    ]
    (row,) = zoo_rows(_run(cells))
    assert row.model == "zoo_resnet18"
    assert row.outcomes == {"structure": {"pass": 1}, "PyTorch → TorchSharp (eval)": {"pass": 2},
                            "TorchSharp → PyTorch (eval)": {"fail": 1}, "continued SGD": {"pass": 2},
                            "continued AdamW": {"xfail": 1}}
    assert row.output_scale == 0.1 and round(row.farthest_eps, 6) == 900.0
    assert row.findings == {"some-finding"}


def test_markdown_and_html_show_the_section_and_the_documented_path_only_when_the_zoo_ran():
    documented = {"skipfc default": {"loaded": 120, "not_loaded": ["fc.weight", "fc.bias"]},
                  "skipfc false": {"loaded": 122, "not_loaded": []},
                  "num_classes changed, skipfc false": "refused: build: System.ArgumentException: Mismatched"}
    run = _run([_cell("zoo_resnet18", "zoo_weights_file", details={"documented_path": documented}),
                _cell("zoo_resnet18", "functional", "fail", details=_eval(0.2, 3.0, 80.0))])
    md = markdown.render(run)
    assert "## Model zoo" in md
    assert "| zoo_resnet18 | — | **1 fail** | — | — | 1 pass | — | — | 0.2 | 80 | — |" in md
    assert "| zoo_resnet18 | 120 loaded; not loaded: fc.weight, fc.bias | 122 loaded; nothing left out | " \
           "refused: build: System.ArgumentException: Mismatched |" in md
    page = html.render(run)
    assert '<h2 id="zoo">Model zoo</h2>' in page and '<td class="fail">1 fail</td>' in page
    assert "nothing left out" in page
    plain = _run([_cell("lenet1", "functional", features=("conv",))])
    assert "Model zoo" not in markdown.render(plain) and 'id="zoo"' not in html.render(plain)


def test_documented_text_names_what_was_left_out_or_the_refusal():
    assert documented_text({"loaded": 3, "not_loaded": ["a"]}) == "3 loaded; not loaded: a"
    assert documented_text("refused: x") == "refused: x"
