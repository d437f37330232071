"""The three optimizer tables agree: the codec's LAYOUTS (harness/codec/optim.py), the
oracle's SPECS (harness/verdicts/oracle.py) and the C# worker's Optimizers.Table
(dotnet/Worker/Optimizers.cs) name the same optimizers, the same TorchSharp class and the
same option and state fields in the same order (docs/format.md's order: the order the
fields lie in a file and in a digest).

The C# table is read from its source with a small parser, so this test needs no .NET.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from harness.verdicts import oracle
from harness.codec import optim_layouts as codec_optim

ROOT = Path(__file__).resolve().parents[2]
OPTIMIZERS_CS = ROOT / "dotnet" / "Worker" / "Optimizers.cs"

# One optimizer as all three tables must see it: (TorchSharp class, option names, state names).
Row = tuple[str, tuple[str, ...], tuple[str, ...]]

_CONST = re.compile(r'static\s+readonly\s+string\[\]\s+(\w+)\s*=\s*(\[[^\]]*\])\s*;')
_ENTRY = re.compile(r'\["(\w+)"\]\s*=\s*new\(\s*typeof\((\w+)\)\s*,\s*')
_IDENT = re.compile(r'\w+')


class CSharpTableError(ValueError):
    """Optimizers.cs does not have the shape this parser reads."""


def _list_expr(text: str, at: int, consts: dict[str, tuple[str, ...]], where: str) -> tuple[tuple[str, ...], int]:
    """One C# string-array expression at ``text[at:]``: ``["a", "b"]``, ``[.. Name, "c"]`` or a
    bare constant ``Name``; returns its strings and the offset after it."""
    if text.startswith("[", at):
        end = text.index("]", at)
        names: list[str] = []
        for item in (x.strip() for x in text[at + 1:end].split(",")):
            if item.startswith(".."):
                names.extend(_const(item[2:].strip(), consts, where))
            elif len(item) >= 2 and item[0] == item[-1] == '"':
                names.append(item[1:-1])
            elif item:
                raise CSharpTableError(f"{where}: cannot read list item {item!r}")
        return tuple(names), end + 1
    m = _IDENT.match(text, at)
    if m is None:
        raise CSharpTableError(f"{where}: expected a string list at {text[at:at + 40]!r}")
    return _const(m.group(0), consts, where), m.end()


def _const(name: str, consts: dict[str, tuple[str, ...]], where: str) -> tuple[str, ...]:
    if name not in consts:
        raise CSharpTableError(f"{where}: unknown string[] constant {name!r} (known: {sorted(consts)})")
    return consts[name]


def csharp_table(source: str) -> dict[str, Row]:
    """PyTorch name -> row, from the text of Optimizers.cs's ``Table``."""
    consts: dict[str, tuple[str, ...]] = {}
    for m in _CONST.finditer(source):
        consts[m.group(1)] = _list_expr(m.group(2), 0, consts, f"constant {m.group(1)}")[0]
    table: dict[str, Row] = {}
    for m in _ENTRY.finditer(source):
        where = f"Optimizers.cs entry {m.group(1)!r}"
        options, at = _list_expr(source, m.end(), consts, where)
        comma = re.compile(r"\s*,\s*").match(source, at)
        if comma is None:
            raise CSharpTableError(f"{where}: expected ',' after the option list")
        states, _ = _list_expr(source, comma.end(), consts, where)
        table[m.group(1)] = (m.group(2), options, states)
    if not table:
        raise CSharpTableError("Optimizers.cs: no table entries found")
    return table


def codec_table(layouts: tuple[codec_optim.Layout, ...]) -> dict[str, Row]:
    return {lay.torch_name: (lay.ts_name, tuple(o.name for o in lay.options), tuple(s.name for s in lay.states))
            for lay in layouts}


def oracle_table(specs: dict[str, oracle.Spec]) -> dict[str, Row]:
    return {name: (spec.ts_class, tuple(o[0] for o in spec.options), tuple(s[0] for s in spec.states))
            for name, spec in specs.items()}


def disagreements(tables: dict[str, dict[str, Row]]) -> list[str]:
    """Every way the named tables differ: optimizers one lacks, and per optimizer the class,
    option list or state list where they do not all agree."""
    found: list[str] = []
    names = set().union(*tables.values())
    for name in sorted(names):
        rows = {who: t.get(name) for who, t in tables.items()}
        missing = sorted(who for who, row in rows.items() if row is None)
        if missing:
            found.append(f"{name}: missing from {', '.join(missing)}")
            continue
        for i, what in enumerate(("TorchSharp class", "options", "states")):
            values = {who: row[i] for who, row in rows.items() if row is not None}
            if len(set(values.values())) > 1:
                found.append(f"{name} {what}: " + "; ".join(f"{who}={v}" for who, v in values.items()))
    return found


def _tables(cs_source: str, layouts: tuple[codec_optim.Layout, ...] = codec_optim.LAYOUTS,
            specs: dict[str, oracle.Spec] = oracle.SPECS) -> dict[str, dict[str, Row]]:
    return {"codec LAYOUTS": codec_table(layouts), "oracle SPECS": oracle_table(specs),
            "Optimizers.cs": csharp_table(cs_source)}


def test_the_three_optimizer_tables_agree() -> None:
    tables = _tables(OPTIMIZERS_CS.read_text(encoding="utf-8"))
    assert len(tables["Optimizers.cs"]) == 11, sorted(tables["Optimizers.cs"])  # the parser saw every row
    assert disagreements(tables) == []


def test_the_csharp_parser_reads_spreads_and_constants() -> None:
    table = csharp_table(OPTIMIZERS_CS.read_text(encoding="utf-8"))
    assert table["RMSprop"][0] == "RMSProp"
    assert table["Adam"][1] == ("beta1", "beta2", "eps", "weight_decay", "amsgrad", "maximize")  # [.. AdamOpts, ...]
    assert table["RAdam"][1] == ("beta1", "beta2", "eps", "weight_decay")                        # bare AdamOpts
    assert table["SGD"][2] == ("momentum_buffer",)


# --- the comparison can fail: mutated copies of each table ---------------------------------

def test_swapped_csharp_fields_are_found(tmp_path: Path) -> None:
    mutant = tmp_path / "Optimizers.cs"
    source = OPTIMIZERS_CS.read_text(encoding="utf-8")
    swapped = source.replace('["step", "exp_avg", "exp_inf"]', '["step", "exp_inf", "exp_avg"]')
    assert swapped != source
    mutant.write_text(swapped, encoding="utf-8")
    assert disagreements(_tables(mutant.read_text(encoding="utf-8"))) == [
        "Adamax states: codec LAYOUTS=('step', 'exp_avg', 'exp_inf'); oracle SPECS=('step', 'exp_avg', 'exp_inf'); "
        "Optimizers.cs=('step', 'exp_inf', 'exp_avg')"]


def test_a_changed_shared_csharp_constant_is_found() -> None:
    source = OPTIMIZERS_CS.read_text(encoding="utf-8")
    mutated = source.replace('AdamOpts = ["beta1", "beta2", "eps", "weight_decay"]',
                             'AdamOpts = ["beta1", "beta2", "weight_decay", "eps"]')
    assert mutated != source
    found = disagreements(_tables(mutated))
    assert sorted(f.split(" ")[0] for f in found) == ["Adam", "AdamW", "Adamax", "NAdam", "RAdam"]


def test_a_renamed_codec_option_and_a_missing_oracle_row_are_found() -> None:
    layouts = tuple(dataclasses.replace(lay, options=tuple(dataclasses.replace(o, name="lambda") if o.name == "lambd"
                                                           else o for o in lay.options))
                    for lay in codec_optim.LAYOUTS)
    specs = {k: v for k, v in oracle.SPECS.items() if k != "Adagrad"}
    found = disagreements(_tables(OPTIMIZERS_CS.read_text(encoding="utf-8"), layouts, specs))
    assert [f.split(":")[0] for f in found] == ["ASGD options", "Adagrad"]
    assert "missing from oracle SPECS" in found[1]


def test_a_wrong_ts_class_is_found() -> None:
    specs = dict(oracle.SPECS, RMSprop=dataclasses.replace(oracle.SPECS["RMSprop"], ts_class="RMSprop"))
    found = disagreements(_tables(OPTIMIZERS_CS.read_text(encoding="utf-8"), specs=specs))
    assert found == ["RMSprop TorchSharp class: codec LAYOUTS=RMSProp; oracle SPECS=RMSprop; Optimizers.cs=RMSProp"]


def test_an_unreadable_csharp_table_is_an_error_not_a_pass() -> None:
    with pytest.raises(CSharpTableError, match="no table entries"):
        csharp_table("// the table moved elsewhere\n")
    with pytest.raises(CSharpTableError, match="unknown string\\[\\] constant 'AdamOptions'"):
        csharp_table('["Adam"] = new(typeof(Adam), AdamOptions, ["step"],')
