"""The mutants of benchmarks/mutate.py: one-line changes to the code that decides verdicts.

Each mutant is an exact line of a file (indentation included) and the line that replaces it,
plus the test files that should notice. The list is versioned: a mutant keeps its name for
as long as it means the same change, and ``VERSION`` goes up whenever one is added, removed
or re-aimed, so two recorded scores are comparable only at the same version. When the code
moves, ``mutate.py`` names every mutant whose line is no longer there (or is there twice):
re-anchor it here.
"""
from __future__ import annotations

from dataclasses import dataclass

VERSION = 1


@dataclass(frozen=True)
class Mutant:
    name: str                # "<module>.<what changes>", stable
    file: str                # from the checkout's root
    original: str            # the exact line, indentation included, no newline
    replacement: str         # the whole line that replaces it
    tests: tuple[str, ...]   # test files (or node ids) run against it
    why: str = ""            # the wrong verdict it would give


def _m(name: str, file: str, original: str, replacement: str, tests: str, why: str = "") -> Mutant:
    return Mutant(name, file, original, replacement, tuple(tests.split()), why)


H = "tests/harness/"
BOUNDS_T = H + "test_bounds.py"
CODEC_IO_T = "tests/codec/test_errors.py tests/codec/test_tensors.py tests/codec/test_golden.py tests/fuzz"
CODEC_SD_T = "tests/codec/test_errors.py tests/codec/test_tensors.py tests/codec/test_mmap.py tests/fuzz"
OPTIM_T = "tests/codec/test_optimizers.py tests/codec/test_errors.py " + H + "test_oracle.py"
REF_T = H + "test_reference.py"
SEM_T = H + "test_semantics.py"
AGREE_T = H + "test_agreement.py " + H + "test_merge.py"
EXPECT_T = H + "test_outcomes_reports.py " + H + "test_cells.py"
COMPARE_T = H + "test_compare.py " + H + "test_cells.py " + H + "test_large_buffers.py"
CONTRACT_T = H + "test_codec_contract.py"
NATIVE_T = H + "test_torchsharp_source.py"
DIFF_T = H + "test_html_junit_diff.py " + H + "test_torchsharp_source.py"

MUTANTS: tuple[Mutant, ...] = (
    # --- harness/bounds.py: computed outputs against each other and the float64 reference ---
    _m("bounds.scale-bound-10x", "harness/bounds.py",
       "    scale_bound = SCALE_EPS * eps_of(a.dtype) * scale",
       "    scale_bound = 10 * SCALE_EPS * eps_of(a.dtype) * scale", BOUNDS_T,
       "two sides 80 eps of the scale apart pass"),
    _m("bounds.nonfinite-ignored", "harness/bounds.py",
       "        return self.nonfinite_mismatch == 0 and self.max_abs <= self.bound",
       "        return self.max_abs <= self.bound", BOUNDS_T,
       "a NaN where the reference is finite is within bound"),
    _m("bounds.reference-eps-float32-10x", "harness/bounds.py",
       "REFERENCE_EPS: dict[torch.dtype, float] = {torch.float64: 64, torch.float32: 64,",
       "REFERENCE_EPS: dict[torch.dtype, float] = {torch.float64: 64, torch.float32: 640,", BOUNDS_T,
       "a float32 side 100 eps of the scale off the reference passes"),
    _m("bounds.output-ulp-float32-4x", "harness/bounds.py",
       "OUTPUT_ULP: dict[torch.dtype, float] = {torch.float64: 256, torch.float32: 256,",
       "OUTPUT_ULP: dict[torch.dtype, float] = {torch.float64: 256, torch.float32: 1024,", BOUNDS_T,
       "float32 outputs 300 ULP apart pass"),
    _m("bounds.either-bound-fails", "harness/bounds.py",
       "    if not bitwise and (ulp > ulp_bound or not same_nonfinite) and (abs_diff > scale_bound or not same_nonfinite):",  # noqa: E501 (an exact line)
       "    if not bitwise and (ulp > ulp_bound or not same_nonfinite) or (abs_diff > scale_bound or not same_nonfinite):",  # noqa: E501 (an exact line)
       BOUNDS_T, "rounding near zero (many ULP, nothing against the scale) fails"),
    # --- harness/ulp.py ---
    _m("ulp.negatives-unordered", "harness/ulp.py",
       "    return torch.where(i < 0, -magnitude, magnitude)",
       "    return magnitude", H + "test_ulp.py " + BOUNDS_T, "-x and +x are 0 ULP apart"),
    _m("ulp.nan-is-near", "harness/ulp.py",
       "            return math.inf",
       "            return 0.0", H + "test_ulp.py " + BOUNDS_T, "a NaN against a number is 0 ULP away"),
    _m("ulp.bitwise-by-value", "harness/ulp.py",
       "        return bool(torch.equal(a.view(view), b.view(view)))",
       "        return bool(torch.equal(a, b))", H + "test_ulp.py " + BOUNDS_T,
       "-0.0 and +0.0 are bitwise equal; NaN never is"),
    # --- harness/digest.py ---
    _m("digest.quantized-dequantized", "harness/digest.py",
       "        t = t.int_repr()",
       "        t = t.dequantize()", H + "test_digest.py", "a quantized tensor's digest is of float32 values"),
    _m("digest.f64-hex-little-endian", "harness/digest.py",
       '    return struct.pack(">d", float(value)).hex()',
       '    return struct.pack("<d", float(value)).hex()', H + "test_digest.py",
       "option bits disagree with the protocol's big-endian hex (the C# side's)"),
    _m("digest.shape-ignored", "harness/digest.py",
       "        return cls(DTYPE_NAMES[t.dtype], tuple(t.shape), hashlib.sha256(tensor_buffer(t)).hexdigest())",
       "        return cls(DTYPE_NAMES[t.dtype], (), hashlib.sha256(tensor_buffer(t)).hexdigest())",
       H + "test_digest.py", "a reshaped tensor (same bytes) digests alike"),
    # --- harness/reference.py: every optimizer's update rule, and the forward pass ---
    _m("reference.sgd-nesterov-dropped", "harness/reference.py",
       '        g = g + momentum * buf if group["nesterov"] else buf',
       "        g = buf", REF_T),
    _m("reference.asgd-eta-without-alpha", "harness/reference.py",
       '    s["eta"] = lr / ((1 + lambd * lr * s["step"]) ** float(group["alpha"]))',
       '    s["eta"] = lr / (1 + lambd * lr * s["step"])', REF_T),
    _m("reference.rprop-etas-swapped", "harness/reference.py",
       '    factor = torch.where(sign > 0, float(group["etaplus"]), torch.where(sign < 0, float(group["etaminus"]), 1.0))',  # noqa: E501 (an exact line)
       '    factor = torch.where(sign > 0, float(group["etaminus"]), torch.where(sign < 0, float(group["etaplus"]), 1.0))',  # noqa: E501 (an exact line)
       REF_T),
    _m("reference.rmsprop-centered-ignored", "harness/reference.py",
       '        avg = (s["square_avg"] - s["grad_avg"] * s["grad_avg"]).sqrt() + float(group["eps"])',
       '        avg = s["square_avg"].sqrt() + float(group["eps"])', REF_T),
    _m("reference.adam-amsgrad-no-max", "harness/reference.py",
       '        s["max_exp_avg_sq"] = torch.maximum(s["max_exp_avg_sq"], s["exp_avg_sq"])',
       '        s["max_exp_avg_sq"] = s["exp_avg_sq"]', REF_T),
    _m("reference.adamw-decay-without-lr", "harness/reference.py",
       '        p = p * (1 - lr * float(group["weight_decay"]))',
       '        p = p * (1 - float(group["weight_decay"]))', REF_T),
    _m("reference.nadam-mu-next-is-mu", "harness/reference.py",
       "    mu_next = b1 * (1 - 0.5 * 0.96 ** ((step + 1) * decay))",
       "    mu_next = mu", REF_T),
    _m("reference.radam-unrectified", "harness/reference.py",
       "    rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))",
       "    rect = 1.0", REF_T),
    _m("reference.adamax-no-decay-of-inf", "harness/reference.py",
       '    s["exp_inf"] = torch.maximum(s["exp_inf"] * b2, g.abs() + float(group["eps"]))',
       '    s["exp_inf"] = torch.maximum(s["exp_inf"], g.abs() + float(group["eps"]))', REF_T),
    _m("reference.adadelta-eps-dropped", "harness/reference.py",
       '    delta = (s["acc_delta"] + eps).sqrt() / (s["square_avg"] + eps).sqrt() * g',
       '    delta = (s["acc_delta"] + eps).sqrt() / s["square_avg"].sqrt() * g', REF_T),
    _m("reference.adagrad-lr-decay-ignored", "harness/reference.py",
       '    clr = float(group["lr"]) / (1 + (s["step"] - 1) * float(group["lr_decay"]))',
       '    clr = float(group["lr"])', REF_T),
    _m("reference.maximize-ignored", "harness/reference.py",
       '    return -g if group.get("maximize") else g',
       "    return g", REF_T),
    _m("reference.forward-in-train-mode", "harness/reference.py",
       "    model.eval()",
       "    model.train()", REF_T),
    # --- harness/compare.py: what two sides hold ---
    _m("compare.bytes-ignored", "harness/compare.py",
       "        if a is None or a == e:",
       "        if a is None or a.shape == e.shape:", COMPARE_T, "a tensor with other bytes passes"),
    _m("compare.missing-keys-ignored", "harness/compare.py",
       "    missing = [k for k in expected if k not in actual]",
       "    missing: list[str] = []", COMPARE_T, "a side that lacks a key passes"),
    _m("compare.state-count-ignored", "harness/compare.py",
       "    if len(expected.states) != len(actual.states):",
       "    if False:", COMPARE_T, "a side holding fewer parameter states passes (zip stops early)"),
    _m("compare.optimizer-class-ignored", "harness/compare.py",
       "    if expected.class_name != actual.class_name:",
       "    if False:", COMPARE_T, "an Adam record compared with an AdamW one passes"),
    _m("compare.files-equal-when-chunks-differ", "harness/compare.py",
       "            if not same:  # bytearray == bytearray is one memcmp",
       "            if False:", COMPARE_T, "two files of one size are always the same bytes"),
    # --- harness/semantics.py: continued training, between the sides and against the reference ---
    _m("semantics.torch2-tolerance-for-pytorch-1", "harness/semantics.py",
       '    if pytorch_version[:1].isdigit() and int(pytorch_version.split(".")[0]) >= 2:',
       '    if pytorch_version[:1].isdigit() and int(pytorch_version.split(".")[0]) >= 1:', SEM_T,
       "PyTorch 1.13's Adam gets the 1024-ULP tolerance measured for 2.x"),
    _m("semantics.tensor-tolerance-10x", "harness/semantics.py",
       "        if u > self.tolerance:",
       "        if u > 10 * self.tolerance:", SEM_T, "tensors ten tolerances apart agree"),
    _m("semantics.exact-values-unchecked", "harness/semantics.py",
       "            if a != b:",
       "            if False:", SEM_T, "a different step count or option agrees"),
    _m("semantics.float32-scalars-at-float64", "harness/semantics.py",
       'FLOAT32_SCALARS = {("ASGD", "eta"), ("ASGD", "mu"), ("NAdam", "mu_product")}',
       "FLOAT32_SCALARS: set[tuple[str, str]] = set()", SEM_T,
       "PyTorch 1.13's float32 eta is thousands of float64 ULP from TorchSharp's double"),
    _m("semantics.reference-tolerance-10x", "harness/semantics.py",
       "REFERENCE_TOLERANCE_EPS = 16.0",
       "REFERENCE_TOLERANCE_EPS = 160.0", SEM_T, "a side 100 eps of the scale off the reference passes"),
    _m("semantics.nonfinite-is-near", "harness/semantics.py",
       "        return math.inf",
       "        return 0.0", SEM_T, "a NaN where the reference is finite is 0 eps away"),
    _m("semantics.step-mismatch-ignored", "harness/semantics.py",
       "                if got != v:",
       "                if False:", SEM_T, "a step count the reference does not have passes (Adadelta's finding)"),
    # --- harness/expectations.py: expected failures ---
    _m("expectations.harness-error-expected", "harness/expectations.py",
       '        if result.outcome == "error" and result.details.get("harness_error"):',
       "        if False:", EXPECT_T, "a harness error on a listed cell becomes xfail"),
    _m("expectations.any-failure-expected", "harness/expectations.py",
       "            hit = next((e for e in entries if e.expects(result.reason)), None)",
       "            hit = next(iter(entries), None)", EXPECT_T, "a listed cell failing differently is xfail"),
    _m("expectations.pass-not-xpass", "harness/expectations.py",
       '        elif result.outcome == "pass":',
       "        elif False:", EXPECT_T, "a listed cell that passes is a pass, the stale entry hidden"),
    _m("expectations.when-negation-ignored", "harness/expectations.py",
       '        return all((c[1:] not in have) if c.startswith("!") else (c in have) for c in self.when)',
       "        return all((c in have) for c in self.when)", EXPECT_T,
       "an entry for machines without a feature never holds"),
    _m("expectations.driver-suffix-kept", "harness/expectations.py",
       '    return "::".join(p.split("+", 1)[0].split("@", 1)[0] if p.startswith("ts") else p for p in cell_id.split("::"))',  # noqa: E501 (an exact line)
       '    return "::".join(p.split("+", 1)[0] if p.startswith("ts") else p for p in cell_id.split("::"))',
       EXPECT_T, "a pythonnet cell is not matched by its version's entries"),
    # --- harness/agreement.py: the two TorchSharp drivers must agree ---
    _m("agreement.disagreement-ignored", "harness/agreement.py",
       "        if mine != theirs:",
       "        if False:", AGREE_T, "drivers that disagree give two verdicts, no error"),
    _m("agreement.skips-compared", "harness/agreement.py",
       '        if twin is None or "skip" in (c.outcome, twin.outcome):',
       "        if twin is None:", AGREE_T, "a driver that declines turns its twin's verdict into an error"),
    _m("agreement.xpass-not-undone", "harness/agreement.py",
       '    return "pass" if c.outcome == "xpass" else c.outcome',
       "    return c.outcome", AGREE_T, "a pass against an xpass is a disagreement"),
    _m("agreement.xfail-not-undone", "harness/agreement.py",
       '    if c.outcome == "xfail" and isinstance(raw, str):',
       "    if False:", AGREE_T, "a listed failure against the same failure unlisted is a disagreement"),
    _m("agreement.checked-twice", "harness/agreement.py",
       '        if SUFFIX not in c.torchsharp or "drivers_disagree" in c.details:',
       "        if SUFFIX not in c.torchsharp:", AGREE_T,
       "a second cross check (a merge of jobs) rewrites the error with its own answer"),
    # --- harness/outcomes.py ---
    _m("outcomes.xpass-not-bad", "harness/outcomes.py",
       'BAD_OUTCOMES = frozenset({"fail", "xpass", "error"})',
       'BAD_OUTCOMES = frozenset({"fail", "error"})',
       H + "test_outcomes_reports.py " + H + "test_html_junit_diff.py " + H + "test_merge.py",
       "an unexpected pass is no regression and leaves the run green"),
    _m("outcomes.summary-counts-one", "harness/outcomes.py",
       "        counts[r.outcome] += 1",
       "        counts[r.outcome] = 1",
       H + "test_outcomes_reports.py " + H + "test_html_junit_diff.py " + H + "test_merge.py"),
    # --- harness/codec/: the readers and writers of the format ---
    _m("codec.uleb-0x80-one-byte", "harness/codec/_io.py",
       "    if b and b[0] < 0x80:  # the common one-byte form (canonical and in range by itself)",
       "    if b and b[0] <= 0x80:  # the common one-byte form (canonical and in range by itself)", CODEC_IO_T),
    _m("codec.uleb-non-canonical-accepted", "harness/codec/_io.py",
       "            if i > 0 and byte == 0:",
       "            if False:", CODEC_IO_T),
    _m("codec.bool-byte-2-accepted", "harness/codec/_io.py",
       "    if b > 1:",
       "    if b > 2:", CODEC_IO_T + " " + OPTIM_T),
    _m("codec.exact-fit-refused", "harness/codec/_io.py",
       "        if left is not None and nbytes > left:",
       "        if left is not None and nbytes >= left:", CODEC_IO_T),
    _m("codec.trailing-bytes-accepted", "harness/codec/_io.py",
       "        if extra:",
       "        if False:", CODEC_IO_T),
    _m("codec.storage-overflow-unchecked", "harness/codec/tensor.py",
       "    if extent * ITEMSIZE[code] > MAX_BYTES:",
       "    if False:", CODEC_IO_T),
    _m("codec.mmap-misaligned-view", "harness/codec/tensor.py",
       "        if at % ITEMSIZE[code] == 0:",
       "        if True:", "tests/codec/test_mmap.py"),
    _m("codec.quantized-zero-point-dropped", "harness/codec/tensor.py",
       "        if tensor.q_scale() != 1.0 or tensor.q_zero_point() != 0:",
       "        if tensor.q_scale() != 1.0:", "tests/codec/test_tensors.py tests/codec/test_errors.py"),
    _m("codec.duplicate-key-accepted", "harness/codec/state_dict.py",
       "        if key in out:",
       "        if False:", CODEC_SD_T),
    _m("codec.fast-path-non-canonical-dim", "harness/codec/state_dict.py",
       "                if shift and not b:",
       "                if False:", CODEC_SD_T),
    _m("codec.optim-bool-read-as-f64", "harness/codec/optim.py",
       '                g[opt.name] = read_f64(r, where) if opt.kind == "f64" else read_bool(r, where)',
       "                g[opt.name] = read_f64(r, where)", OPTIM_T),
    _m("codec.optim-absent-written-present", "harness/codec/optim.py",
       '                    f.write(write_bool(v is not None, where + " present"))',
       '                    f.write(write_bool(True, where + " present"))', OPTIM_T),
    _m("codec.asgd-lazy-mu-zero", "harness/codec/optim_layouts.py",
       '            St("mu", "f64", _const(1.0)), St("ax", "tensor", _zeros)), {**_ANY, **_OFF}),',
       '            St("mu", "f64", _const(0.0)), St("ax", "tensor", _zeros)), {**_ANY, **_OFF}),', OPTIM_T),
    # --- harness/codec_contract.py: usable tensors and clear errors ---
    _m("contract.aliasing-unchecked", "harness/codec_contract.py",
       "    if aliasing or warned:",
       "    if warned:", CONTRACT_T, "tensors over read-only bytes pass when PyTorch did not warn"),
    _m("contract.warning-unheard", "harness/codec_contract.py",
       "    warned = next((str(w.message).splitlines()[0] for w in caught if NOT_WRITABLE.search(str(w.message))), None)",  # noqa: E501 (an exact line)
       "    warned = None", CONTRACT_T, "a loader PyTorch warned about passes when its bytes were not read()"),
    _m("contract.shared-memory-unchecked", "harness/codec_contract.py",
       "        if s1 < e0:",
       "        if False:", CONTRACT_T, "two keys sharing memory pass"),
    _m("contract.write-through-unchecked", "harness/codec_contract.py",
       "        if not isinstance(other, torch.Tensor) or not _same_bits(other, t):",
       "        if False:", CONTRACT_T, "writes into a loaded tensor that change the next load pass"),
    _m("contract.unclear-message-accepted", "harness/codec_contract.py",
       "            if not SAYS_WHERE.search(message):",
       "            if False:", CONTRACT_T, "an error that does not say where passes"),
    _m("contract.type-error-accepted", "harness/codec_contract.py",
       "PROGRAMMING_ERRORS = (TypeError, AttributeError, IndexError, KeyError, NameError, ZeroDivisionError,",
       "PROGRAMMING_ERRORS = (AttributeError, IndexError, KeyError, NameError, ZeroDivisionError,", CONTRACT_T,
       "a TypeError that mentions a byte passes"),
    _m("contract.damaged-file-read-accepted", "harness/codec_contract.py",
       '            problems.append(f"{what}: read without an error (returned a value for a damaged file)")',
       "            pass", CONTRACT_T, "a loader that returns a value for a truncated file passes"),
    # --- harness/native_guard.py: a source build against the released native library ---
    _m("native.new-gap-counted-known", "harness/native_guard.py",
       "    known = sorted(missing & (release_declared - exports))",
       "    known = sorted(missing)", NATIVE_T, "a build needing an entry point nobody exports runs"),
    _m("native.local-symbols-exported", "harness/native_guard.py",
       "                if st_shndx == 0 or (st_info >> 4) not in (1, 2):  # undefined, or local binding",
       "                if st_shndx == 0:  # undefined, or local binding", NATIVE_T),
    _m("native.undefined-symbols-exported", "harness/native_guard.py",
       "                if st_shndx == 0 or (st_info >> 4) not in (1, 2):  # undefined, or local binding",
       "                if (st_info >> 4) not in (1, 2):  # undefined, or local binding", NATIVE_T,
       "a name the library imports counts as exported"),
    _m("native.changed-sources-unflagged", "harness/native_guard.py",
       "    changed = sorted(n for n in got.keys() & ref.keys() if got[n] != ref[n])",
       "    changed: list[str] = []", NATIVE_T, "a patched src/Native reads as identical to the release"),
    # --- harness/merge.py ---
    _m("merge.cross-check-skipped", "harness/merge.py",
       "    cross_check(merged.cells)  # twins of two TorchSharp drivers may sit in different shards",
       "    pass", AGREE_T, "drivers that disagree across shards give two verdicts"),
    _m("merge.cell-count-unchecked", "harness/merge.py",
       '    if len(placed) != int(first.provenance["plan_cells"]):',
       "    if False:", H + "test_merge.py", "shards that lost cells merge into a smaller green matrix"),
    _m("merge.other-commit-accepted", "harness/merge.py",
       "            if run.provenance.get(key) != first.provenance[key]:",
       "            if False:", H + "test_merge.py"),
    _m("merge.order-lost", "harness/merge.py",
       "    merged.cells = [c for _, c in sorted(placed, key=lambda ic: ic[0])]  # the serial run's order",
       "    merged.cells = [c for _, c in placed]", H + "test_merge.py"),
    # --- harness/diff.py: the regression gate ---
    _m("diff.error-not-regression", "harness/diff.py",
       "        elif prev.outcome in GOOD_OUTCOMES and cell.outcome in BAD_OUTCOMES:",
       '        elif prev.outcome in GOOD_OUTCOMES and cell.outcome == "fail":', DIFF_T,
       "a pass that became an error is no regression"),
    _m("diff.new-bad-cell-ignored", "harness/diff.py",
       "            if cell.outcome in BAD_OUTCOMES:",
       "            if False:", DIFF_T, "a new failing cell is no regression"),
    _m("diff.exit-zero", "harness/diff.py",
       "    return 1 if d.has_regression else 0",
       "    return 0", DIFF_T, "the gate passes a regression"),
    _m("diff.columns-xpass-kept", "harness/diff.py",
       '    elif outcome == "xpass":',
       "    elif False:", DIFF_T, "a fix in a source build's column is not a fix"),
)
