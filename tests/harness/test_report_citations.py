"""Every TorchSharp line number a finding cites still points at the code it means.

The reports (docs/findings/*.md) and the reasons of the expected failures
(cases/expected_failures/*.toml) cite TorchSharp's source at the 0.107.0 release (c20b6a1c) as
``path/File.cs:N``, ``File.cs:N-M`` or "File.cs ... line(s) N[-M][, K]": a line number refers to
the last file named before it in the same section (a heading starts afresh), and a file is
TorchSharp's when its name resolves to exactly one file of the release tarball in third_party/
(``.cs`` names must; other ``.cpp``/``.h``/``.py`` names are other projects', e.g. PyTorch's).

CITED below holds, for every (file, first, last) the reports cite, text that must be on those
lines of the tarball: the first fragment on the first line, the others anywhere in the range.
The test fails when a report cites lines the table does not know (add the row after reading
the source), when the table holds a row no report cites any more, and when the source at those
lines does not hold the text. Needs nothing but the tarball.
"""
from __future__ import annotations

import re
import tarfile
import tomllib
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import pytest

from harness.drivers.pytorch_worker import PYTORCH26_ROOT

ROOT = Path(__file__).resolve().parents[2]
TARBALL = ROOT / "third_party" / "torchsharp" / "TorchSharp-0.107.0-c20b6a1c.tar.gz"
# TorchSharp's TorchVision at the same release commit (src/TorchVision: the model zoo's findings)
TORCHVISION_TARBALL = ROOT / "third_party" / "torchsharp" / "TorchVision-0.107.0-c20b6a1c.tar.gz"
# TorchSharp.PyBridge 1.4.4's source (the route's TorchSharp half): its files are cited as
# TorchSharp.PyBridge/File.cs or by a name no TorchSharp file has
PYBRIDGE_TARBALL = ROOT / "third_party" / "pybridge" / "TorchSharp.PyBridge-1.4.4-059476b.tar.gz"
REPORTS = ROOT / "docs" / "findings"
EXPECTED = ROOT / "cases" / "expected_failures"

NN, OPT = "src/TorchSharp/NN/", "src/TorchSharp/Optimizers/"
PYB = "TorchSharp.PyBridge/"
TV = "src/TorchVision/models/"
TEN, NAT = "src/TorchSharp/Tensor/", "src/Native/LibTorchSharp/"
CITED: dict[tuple[str, int, int], tuple[str, ...]] = {
    (OPT + "Adadelta.cs", 126, 165): ("public override Tensor step(Func<Tensor> closure", "}, closure);"),
    (OPT + "Adadelta.cs", 177, 177): ("public long step;",),
    (OPT + "Adadelta.cs", 215, 215): ("step = reader.ReadInt64();",),
    (OPT + "Adadelta.cs", 226, 226): ("writer.Write(step);",),
    (OPT + "Adadelta.cs", 241, 241): ("step = st_state.step;",),
    (OPT + "Adam.cs", 173, 173): ("state.step += 1;",),
    (OPT + "AdamW.cs", 173, 173): ("state.step += 1;",),
    (OPT + "Adamax.cs", 159, 159): ("state.step += 1;",),
    (OPT + "Adagrad.cs", 154, 154): ("state.step += 1;",),
    (OPT + "ASGD.cs", 158, 158): ("state.step += 1;",),
    (OPT + "NAdam.cs", 163, 163): ("state.step += 1;",),
    (OPT + "RAdam.cs", 156, 156): ("state.step += 1;",),
    (OPT + "RMSprop.cs", 171, 171): ("state.step += 1;",),
    (OPT + "Rprop.cs", 157, 157): ("state.step += 1;",),
    (OPT + "ASGD.cs", 191, 192): ("public double eta;", "public double mu;"),
    (OPT + "ASGD.cs", 254, 255): ("writer.Write(eta);", "writer.Write(mu);"),
    (OPT + "NAdam.cs", 177, 178):
        ("var mu_product = state.mu_product * mu;", "var mu_product_next = mu_product * mu_next;"),
    (OPT + "NAdam.cs", 204, 204): ("public double mu_product;",),
    (OPT + "NAdam.cs", 255, 255): ("writer.Write(mu_product);",),
    (OPT + "RAdam.cs", 176, 176): ("var t6 = bias_corrected_exp_avg * lr;",),
    (OPT + "RAdam.cs", 176, 182): ("var t6 = bias_corrected_exp_avg * lr;",
                                   "param.add_(t6 * lr * adaptive_lr * rect, alpha: -1.0);"),
    (OPT + "RAdam.cs", 178, 183):
        ("if (rho_t > 5) {", "param.add_(t6 * lr * adaptive_lr * rect, alpha: -1.0);", "} else {"),
    (OPT + "RAdam.cs", 182, 182): ("param.add_(t6 * lr * adaptive_lr * rect, alpha: -1.0);",),
    (OPT + "RAdam.cs", 184, 184): ("param.add_(t6, alpha: -1.0);",),
    (NAT + "THSTensorConv.cpp", 311, 311): ("Tensor THSTensor_conv2d(",),
    (NAT + "THSTensor.cpp", 120, 123): ("void THSTensor_backward(Tensor tensor)", "tensor->backward();"),
    (NAT + "THSJIT.cpp", 4, 19): ("JITModule THSJIT_load(const char* filename", "torch::jit::load(filename", "CATCH("),
    (NAT + "THSJIT.cpp", 21, 38): ("JITModule THSJIT_load_byte_array(", "CATCH("),
    (NAT + "THSJIT.cpp", 40, 40): ("JITCompilationUnit THSJIT_compile(const char* script)",),
    (NAT + "Utils.h", 38, 46): ("#define CATCH(x)", "catch (const c10::Error", "catch (const std::runtime_error"),
    (NN + "Normalization/GroupNorm.cs", 22, 32): ("internal GroupNorm(long num_groups, long num_channels",
                                                  "weight = Parameter(torch.empty(num_channels, dtype, device));",
                                                  "this.bias = Parameter(torch.empty(num_channels, dtype, device));"),
    (NN + "Normalization/GroupNorm.cs", 29, 30): ("weight = Parameter(torch.empty(num_channels, dtype, device));",
                                                  "this.bias = Parameter(torch.empty(num_channels, dtype, device));"),
    (NN + "Normalization/LayerNorm.cs", 39, 52): ("reset_parameters();", "public void reset_parameters()",
                                                  "init.ones_(weight);", "init.zeros_(bias);"),
    (NN + "Normalization/NormBase.cs", 43, 43): ("reset_parameters();",),
    (NN + "Module.cs", 186, 204): ("protected internal virtual Module _to(DeviceType deviceType, int deviceIndex",
                                   "_toEpilog("),
    (NN + "Module.cs", 192, 192): ("if (deviceType != _deviceType || deviceIndex != _deviceIndex) {",),
    (NN + "Module.cs", 213, 224):
        ("protected internal virtual Module _to(ScalarType dtype, bool non_blocking)", "_toEpilog("),
    (NN + "Module.cs", 241, 299): ("protected virtual void _toEpilog(ScalarType? dtype, Device? device",
                                   "props.ToDictionary(prop => prop.Name)"),
    (NN + "Module.cs", 245, 249): ("foreach (var (_, sm) in named_children()) {", "sm._to("),
    (NN + "Module.cs", 254, 254):
        ("var props = GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance);",),
    (NN + "Module.cs", 256, 260): ("// var propsByName = new Dictionary<string, PropertyInfo>();",
                                   "// There may be duplicates, and this just overwrites it.",
                                   "//     propsByName[p.Name] = p;"),
    (NN + "Module.cs", 262, 262): ("var propsByName = props.ToDictionary(prop => prop.Name);",),
    (NN + "Module.cs", 450, 471): ("public virtual IEnumerable<(string name, Tensor buffer)> named_buffers(",
                                   "_internal_buffers"),
    (NN + "Module.cs", 522, 542): ("public virtual Dictionary<string, Tensor> state_dict(", "named_parameters()",
                                   "named_buffers(include_nonpersistent: false)", "_internal_submodules", "TryAdd"),
    (NN + "Module.cs", 536, 539): ("foreach (var (n, p) in _internal_submodules) {", "p.state_dict(destination, key);"),
    (NN + "Module.cs", 621, 640): ("public virtual IEnumerable<(string name, Parameter parameter)> named_parameters(",
                                   "var seen = new HashSet<IntPtr>();"),
    (NN + "Module.cs", 874, 897): ("public Module save(string location", "save_state_dict(writer, sd, skip);"),
    (NN + "Module.cs", 917, 933):
        ("public static void save_state_dict(System.IO.BinaryWriter writer", "kvp.Value.Save(writer);"),
    (NN + "Module.cs", 982, 1022):
        ("public virtual Module load(System.IO.BinaryReader reader", "sd[key].Load(reader);"),
    (NN + "Module.cs", 1007, 1007): ("sd[key].Load(reader);",),
    (NN + "ModuleDict.cs", 69, 69): ("public (string, T) this[int index] {",),
    (NN + "ModuleDict.cs", 86, 86): ("public T this[string key] {",),
    (NN + "Sequential.cs", 36, 46): ("internal void Add(string name, torch.nn.IModule<Tensor, Tensor> sm)",
                                     "_modules.Add(",
                                     "_names.Add(name);"),
    (NN + "Sequential.cs", 36, 91): ("internal void Add(string name, torch.nn.IModule<Tensor, Tensor> sm)",
                                     "named_parameters(", "named_buffers("),
    (NN + "Sequential.cs", 61, 75): ("public override IEnumerable<(string name, Parameter parameter)> named_parameters",
                                     "var seen = new HashSet<IntPtr>();"),
    (NN + "Sequential.cs", 65, 72): ("var seen = new HashSet<IntPtr>();", "seen.Add(p.handle);"),
    (NN + "Sequential.cs", 77, 91):
        ("public override IEnumerable<(string name, Tensor buffer)> named_buffers(", "_modules"),
    (NN + "Sequential.cs", 272, 288): ("protected internal override nn.Module _to(ScalarType dtype, bool non_blocking)",
                                       "foreach (var m in _modules)"),
    (NN + "Sequential.cs", 295, 296): ("private List<torch.nn.IModule<Tensor, Tensor>> _modules",
                                       "private List<string> _names"),
    (TEN + "Factories/Tensor.Factories.cs", 568, 593): ("public static Tensor Load(System.IO.BinaryReader reader)",
                                                        "if (totalSize > int.MaxValue)", "return tensor;"),
    (TEN + "Factories/Tensor.Factories.cs", 577, 581): ("long totalSize = 1;", "totalSize *= loadedShape[i];"),
    (TEN + "Factories/Tensor.Factories.cs", 583, 587): ("//", "// TODO: Fix this so that you can read large tensors.",
                                                        "if (totalSize > int.MaxValue)",
                                                        'NotImplementedException("Loading tensors larger than 2GB");'),
    (TEN + "Tensor.cs", 512, 515): ("public void WriteBytesToStream(Stream stream", "_validate(0);"),
    (TEN + "Tensor.cs", 547, 553): ("public void ReadBytesFromStream(Stream stream", "_validate(0);"),
    (TEN + "Tensor.cs", 547, 578):
        ("public void ReadBytesFromStream(Stream stream", "long totalSize = NumberOfElements * ElementSize;"),
    (TEN + "Tensor.cs", 616, 628): ("private void _validate(long totalSize)",
                                    'if (!is_contiguous()) throw new InvalidOperationException(',
                                    '"Bytes() called on non-contiguous tensor.");'),
    (TEN + "TensorExtensionMethods.cs", 396, 415): ("public static void Save(this Tensor tensor, System.IO.",
                                                    "tensor.WriteBytesToStream(writer.BaseStream);"),
    (TEN + "TensorExtensionMethods.cs", 449, 482): ("public static void Load(this Tensor tensor, System.IO.",
                                                    "ReadBytesFromStream"),
    # TorchSharp's TorchVision at the release commit (third_party/torchsharp/TorchVision-...)
    (TV + "MobileNetV2.cs", 106, 106): ("private readonly nn.Module<Tensor, Tensor> classifier;",),
    (TV + "MobileNetV2.cs", 107, 107): ("private readonly nn.Module<Tensor, Tensor> features;",),
    (TV + "MobileNetV2.cs", 106, 107): ("private readonly nn.Module<Tensor, Tensor> classifier;", "features;"),
    (TV + "MobileNetV3.cs", 168, 170):
        ("private readonly nn.Module<Tensor, Tensor> avgpool;", "classifier;", "features;"),
    (TV + "InceptionV3.cs", 83, 83): ("private readonly Module<Tensor, Tensor> AuxLogits;",),
    (TV + "InceptionV3.cs", 135, 135): ("AuxLogits = inception_aux(768, numClasses);",),
    (TV + "InceptionV3.cs", 206, 265): ("public override Tensor forward(Tensor x)", "x = Mixed_6e.call(x);",
                                        "x = Mixed_7a.call(x);", "return x.MoveToOuterDisposeScope();"),
    (TV + "InceptionV3.cs", 247, 247): ("x = Mixed_6e.call(x);",),
    (TV + "InceptionV3.cs", 249, 249): ("x = Mixed_7a.call(x);",),
    (TV + "InceptionV3.cs", 265, 265): ("return x.MoveToOuterDisposeScope();",),
    (TV + "ResNet.cs", 381, 381): ("public static Modules.ResNet resnext101_32x8d(",),
    (TV + "ResNet.cs", 390, 390): ("return Modules.ResNet.ResNet50(num_classes,",),
    (TV + "ResNet.cs", 434, 434): ("public static Modules.ResNet resnext101_64x4d(",),
    (TV + "ResNet.cs", 443, 443): ("return Modules.ResNet.ResNet50(num_classes,",),
    (TV + "ResNet.cs", 675, 675): ("Bottleneck.expansion, new int[] { 3, 4, 6, 3 },",),
    (TV + "ResNet.cs", 687, 687): ("public static ResNet ResNet101(",),
    (TV + "ResNet.cs", 701, 701): ("Bottleneck.expansion, new int[] { 3, 4, 23, 3 },",),
    (NN + "Module.cs", 1097, 1120): ("protected virtual void RegisterComponents()",),
    # TorchSharp.PyBridge 1.4.4 (third_party/pybridge/)
    (PYB + "PyTorchUnpickler.cs", 110, 125): ("static torch.ScalarType GetScalarTypeFromStorageName(string storage) {",
                                              "_ => throw new NotImplementedException()"),
    (PYB + "PyTorchUnpickler.cs", 124, 124): ("_ => throw new NotImplementedException()",),
    (PYB + "PyTorchUnpickler.cs", 167, 171): ("StorageOffset = (int)args[1],", "Select(i => (long)(int)i)"),
    ("TorchSharp.PyBridge/PyTorchPickler.cs", 23, 23): ("PickleStateDict(File.OpenWrite(file), source);",),
    ("TorchSharp.PyBridge/Safetensors.cs", 50, 50): ("using var stream = File.OpenWrite(path);",),
    (PYB + "PyBridgeModuleExtensions.cs", 16, 16): ("using var stream = System.IO.File.Create(location);",),
    (PYB + "PyBridgeModuleExtensions.cs", 49, 49): ("using var stream = System.IO.File.Create(location);",),
    (PYB + "PyBridgeModuleExtensions.cs", 162, 214):
        ("static (IList<string> missing_keys, IList<string> unexpected_keys) load_state_dict(",
         "return (missingKeys, unexpectedKeys);"),
    (PYB + "PyBridgeModuleExtensions.cs", 199, 205): ("if (constructor.DType == state[key].dtype) {",),
    (PYB + "PyBridgeModuleExtensions.cs", 206, 211): ("else {",),
    (PYB + "PyTorchPickler.cs", 71, 114): ("protected override bool persistentId(object pid, out object? newpid) {",),
    (PYB + "PyTorchPickler.cs", 98, 98): ("tensor.WriteBytesToStream(stream);",),
    (PYB + "PyTorchPickler.cs", 106, 106): ("tensor.NumberOfElements // numel",),
    (PYB + "PyTorchPickler.cs", 224, 252): ("class TensorDeconstructor : IObjectDeconstructor {", "#endregion"),
    (PYB + "PyTorchPickler.cs", 243, 243): ("tensor.storage_offset(),",),
    (PYB + "PyTorchUnpickler.cs", 213, 224): ("public torch.Tensor ReadTensorFromStream() {", "return temp;"),
    (PYB + "OptimizerUtils.cs", 102, 102): ("default: targetTable[name] = value; break;",),
    (PYB + "OptimizerUtils.cs", 62, 62): ('"LearningRate" or "InitialLearningRate" => referenceTable["lr"],',),
    (PYB + "OptimizerUtils.cs", 96, 96): ('case "InitialLearningRate": break;',),
    (PYB + "PyBridgeModuleExtensions.cs", 199, 211): ("if (constructor.DType == state[key].dtype) {",),
    ("TorchSharp.PyBridge/PyTorchUnpickler.cs", 38, 41): ("byte[] signature = new byte[4];",
                                                          "if (signature[0] != 0x50",
                                                          "saved using the old PyTorch format"),
    (PYB + "Safetensors.cs", 17, 47): ("public static Dictionary<string, torch.Tensor> LoadStateDict(Stream stream",
                                       "foreach (var kvp in index) {", "return ret;"),
    (PYB + "Safetensors.cs", 32, 34): ("long length = kvp.Value.Offsets[1] - kvp.Value.Offsets[0];",
                                       "if (length != tensor.ElementSize * tensor.NumberOfElements)",
                                       "mismatched # of elements"),
    (PYB + "Safetensors.cs", 32, 36): ("long length = kvp.Value.Offsets[1] - kvp.Value.Offsets[0];",
                                       "stream.Position = offset + kvp.Value.Offsets[0];"),
    (PYB + "Safetensors.cs", 36, 36): ("stream.Position = offset + kvp.Value.Offsets[0];",),
    (PYB + "PyBridgeModuleExtensions.cs", 274, 274):
        ("var loadedStateDict = Safetensors.LoadStateDict(stream, leaveOpen, curStateDict.Keys.ToList());",),
    (PYB + "PyBridgeModuleExtensions.cs", 170, 170): ("skip ??= Array.Empty<string>();",),
    (PYB + "PyBridgeModuleExtensions.cs", 311, 311):
        ("public static Module load_checkpoint(this Module module, string path, string? checkpointName = null, "
         "bool strict = true, IList<string>? skip = null",),
    (PYB + "PyBridgeModuleExtensions.cs", 372, 376):
        ("skip ??= new List<string>();", "foreach (var badKey in weightMap.Keys.Except(curStateDict.Keys))",
         "skip.Add(badKey);", "weightMap.Remove(badKey);"),
}

FILE = r"(?P<file>[\w./-]+\.(?:cs|cpp|h|py))"
NUMS = r"(?P<nums>\d+(?:\s*-\s*\d+)?(?:\s*(?:,|and)\s*\d+(?:\s*-\s*\d+)?)*)"
TOKEN = re.compile(rf"{FILE}`?(?::(?P<colon>\d+(?:-\d+)?))?|\blines?\s+{NUMS}")


@lru_cache(maxsize=1)
def _tarball() -> dict[str, list[str]]:
    """Path (below the tarball's root) -> its lines."""
    out: dict[str, list[str]] = {}
    for tarball in (TARBALL, TORCHVISION_TARBALL, PYBRIDGE_TARBALL):
        with tarfile.open(tarball) as tar:
            for m in tar.getmembers():
                f = tar.extractfile(m) if m.isfile() and m.name.endswith((".cs", ".cpp", ".h")) else None
                if f is not None:
                    out[m.name.removeprefix("./")] = f.read().decode("utf-8-sig", errors="replace").splitlines()
    return out


def resolve(name: str) -> str | None:
    """The tarball path a cited file name means; None for another project's file. A ``.cs``
    name (only TorchSharp's) that matches no file, or any name matching several, is an error.
    A path outside ``src/`` is not TorchSharp's."""
    name = name.removeprefix("./")
    if "/" in name and not name.startswith(("src/", "TorchSharp.PyBridge/")):
        return None   # a path of this project (../../dotnet/Findings/...) or of another one (torch/optim/...)
    hits = [p for p in _tarball() if p == name or p.endswith("/" + name)]
    if len(hits) > 1:
        raise ValueError(f"{name!r} is ambiguous in the release ({', '.join(hits)}): cite it by its path")
    if not hits and name.endswith(".cs"):
        raise ValueError(f"{name!r} is no file of the TorchSharp 0.107.0 release (nor of TorchSharp.PyBridge 1.4.4)")
    return hits[0] if hits else None


def _ranges(nums: str) -> Iterator[tuple[int, int]]:
    for part in re.split(r"\s*(?:,|and)\s*", nums.strip()):
        a, _, b = part.partition("-")
        yield int(a), int(b or a)


def _sections(text: str) -> Iterator[str]:
    """Each section's prose on one line (code blocks left out: they quote, they do not cite)."""
    body: list[str] = []
    fence = False
    for line in text.splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and line.startswith("#"):
            yield " ".join(body)
            body = []
        elif not fence:
            body.append(line)
    yield " ".join(body)


def citations(text: str) -> Iterator[tuple[str, int, int]]:
    """(tarball path, first line, last line) of every TorchSharp line number ``text`` cites."""
    for section in _sections(text):
        current: str | None = None
        for m in TOKEN.finditer(section):
            if m.group("file"):
                current = resolve(m.group("file"))
                if current and m.group("colon"):
                    yield from ((current, a, b) for a, b in _ranges(m.group("colon")))
            elif current:
                yield from ((current, a, b) for a, b in _ranges(m.group("nums")))


def _texts() -> Iterator[tuple[str, str]]:
    """(name, text) of every report and of every expected-failure entry's reason (they cite too)."""
    for report in sorted(REPORTS.glob("*.md")):
        yield report.name, report.read_text(encoding="utf-8")
    for data in sorted(EXPECTED.glob("*.toml")):
        for i, entry in enumerate(tomllib.loads(data.read_text(encoding="utf-8")).get("xfail", []), 1):
            yield f"{data.name}: entry {i}", str(entry.get("reason", ""))


def _all_cited() -> dict[tuple[str, int, int], list[str]]:
    cited: dict[tuple[str, int, int], list[str]] = {}
    for name, text in _texts():
        for c in citations(text):
            cited.setdefault(c, []).append(name)
    return cited


def test_every_cited_range_is_in_the_table_and_every_row_is_cited() -> None:
    cited = _all_cited()
    unknown = sorted(f"{f}:{a}-{b} ({', '.join(sorted(set(r)))})" for (f, a, b), r in cited.items()
                     if (f, a, b) not in CITED)
    stale = sorted(f"{f}:{a}-{b}" for (f, a, b) in CITED if (f, a, b) not in cited)
    assert not unknown, f"reports cite lines the table does not check (read the source, add a row): {unknown}"
    assert not stale, f"rows no report cites any more (remove them): {stale}"


@pytest.mark.parametrize("key", sorted(CITED), ids=[f"{Path(f).name}:{a}-{b}" for f, a, b in sorted(CITED)])
def test_cited_lines_hold_the_quoted_code(key: tuple[str, int, int]) -> None:
    path, first, last = key
    lines = _tarball()[path]
    assert 1 <= first <= last <= len(lines), f"{path} has {len(lines)} lines, cited {first}-{last}"
    head, *rest = CITED[key]
    assert head in lines[first - 1], f"{path}:{first} is {lines[first - 1].strip()!r}, not {head!r}"
    span = "\n".join(lines[first - 1:last])
    missing = [t for t in rest if t not in span]
    assert not missing, f"{path}:{first}-{last} lacks {missing}"


def test_the_parser_reads_each_citation_form() -> None:
    text = ("## Root cause\n`src/TorchSharp/NN/Module.cs` lines 522-542, then `Adam.cs:173`; back in\n"
            "Module.cs (lines\n  536-539), lines 215, 226 and 241; PyTorch's `torch/optim/adam.py` line 9.\n"
            "```csharp\nModule.cs line 1\n```\n## Next\nline 5 names no file here.\n")
    m = "src/TorchSharp/NN/Module.cs"
    assert list(citations(text)) == [(m, 522, 542), ("src/TorchSharp/Optimizers/Adam.cs", 173, 173),
                                     (m, 536, 539), (m, 215, 215), (m, 226, 226), (m, 241, 241)]
    with pytest.raises(ValueError, match="ambiguous"):
        list(citations("Tensor.cs line 3"))
    with pytest.raises(ValueError, match="no file of the TorchSharp"):
        list(citations("Nowhere.cs line 3"))


# --- PyTorch lines the reports cite, against Debian's installed copies (1.13.1 on the host, 2.6.0 in its root) ---
PT113 = Path("/usr/lib/python3/dist-packages/torch")
PT26 = PYTORCH26_ROOT / "usr/lib/python3/dist-packages/torch"
F32, NADAM = "pytorch-float32-optimizer-scalars.md", "nadam-pytorch113-mu-product.md"
# (report, PyTorch, file, first, last) -> text on those lines (the first fragment on the first line)
PYTORCH_CITED: dict[tuple[str, str, str, int, int], tuple[str, ...]] = {
    (F32, "1.13", "optim/optimizer.py", 216, 217): ("if param.is_floating_point():", "value = value.to(param.dtype)"),
    (F32, "1.13", "optim/asgd.py", 95, 96): ("state['eta'] = torch.tensor(group['lr'])",
                                             "state['mu'] = torch.tensor(1.)"),
    (F32, "1.13", "optim/nadam.py", 124, 124): ("state['mu_product'] = torch.tensor(1.)",),
    (F32, "1.13", "optim/asgd.py", 214, 217): ("new_eta = torch.tensor(lr / math.pow(", "eta.copy_(new_eta)",
                                               "mu.copy_(new_mu)"),
    (F32, "1.13", "optim/nadam.py", 239, 239): ("mu_product *= mu",),
    (F32, "2.6", "optim/optimizer.py", 762, 763): ("if param.is_floating_point():",
                                                   "return value.to(dtype=param.dtype, device=param.device)"),
    (F32, "2.6", "optim/optimizer.py", 216, 221): ("def _get_scalar_dtype(",
                                                   "torch.float64 if torch.get_default_dtype() == "),
    (F32, "2.6", "optim/asgd.py", 103, 112): ('state["eta"] = (', "dtype=_get_scalar_dtype()",
                                              'state["mu"] = torch.ones('),
    (F32, "2.6", "optim/nadam.py", 135, 139): ('state["mu_product"] = (', "dtype=_get_scalar_dtype()"),
    (F32, "2.6", "optim/asgd.py", 265, 268): ("new_eta = torch.as_tensor(lr / ((1 + lambd * lr * step) ** alpha))",
                                              "eta.copy_(new_eta)", "mu.copy_(new_mu)"),
    (F32, "2.6", "optim/nadam.py", 345, 345): ("mu_product *= mu",),
    (NADAM, "1.13", "optim/nadam.py", 239, 239): ("mu_product *= mu",),
    (NADAM, "1.13", "optim/nadam.py", 240, 240): ("mu_product_next = mu_product * mu * mu_next",),
    (NADAM, "1.13", "optim/nadam.py", 248, 248):
        ("param.addcdiv_(exp_avg, denom, value=-lr * mu_next / (1. - mu_product_next",),
    (NADAM, "1.13", "optim/nadam.py", 297, 298): ("(lr * mu_next / (1. - mu_product.item() * mu_next))",),
    ("groupnorm-uninitialised-affine.md", "1.13", "nn/modules/normalization.py", 259, 260):
        ("self.weight = Parameter(torch.empty(num_channels", "self.bias = Parameter(torch.empty(num_channels"),
    ("groupnorm-uninitialised-affine.md", "1.13", "nn/modules/normalization.py", 265, 265):
        ("self.reset_parameters()",),
    ("groupnorm-uninitialised-affine.md", "1.13", "nn/modules/normalization.py", 267, 270):
        ("def reset_parameters(self) -> None:", "init.ones_(self.weight)", "init.zeros_(self.bias)"),
    ("adadelta-step-never-incremented.md", "1.13", "optim/adadelta.py", 114, 114): ("state['step'] = 0",),
    ("adadelta-step-never-incremented.md", "1.13", "optim/adadelta.py", 121, 121): ("state['step'] += 1",),
    ("radam-lr-applied-twice.md", "1.13", "optim/radam.py", 230, 237):
        ("if rho_t > 5.:", "param.add_(bias_corrected_exp_avg * lr * adaptive_lr * rect, alpha=-1.0)",
         "param.add_(bias_corrected_exp_avg * lr, alpha=-1.0)"),
}


@pytest.mark.parametrize("key", sorted(PYTORCH_CITED),
                         ids=[f"{r[:12]}:{v}:{Path(f).name}:{a}-{b}" for r, v, f, a, b in sorted(PYTORCH_CITED)])
def test_pytorch_lines_the_reports_cite(key: tuple[str, str, str, int, int]) -> None:
    """One way only (these citations name no file the parser could check against, e.g. "line 239"
    in a code comment): the report must still cite the lines, and PyTorch must hold the text."""
    report, version, rel, first, last = key
    text = " ".join((REPORTS / report).read_text(encoding="utf-8").split())
    cites = f"line {first}" if first == last else f"lines {first}-{last}"
    assert cites in text, f"{report} no longer cites {rel} {first}-{last}: update the table"
    base = PT113 if version == "1.13" else PT26
    path = base / rel
    if not path.is_file():
        pytest.skip(f"PyTorch {version}'s {rel} is not installed here ({path}): scripts/setup-pytorch26.sh makes 2.6")
    if f"__version__ = '{version}" not in (base / "version.py").read_text(encoding="utf-8"):
        pytest.skip(f"{base} is not PyTorch {version} (the reports cite Debian's 1.13.1 and 2.6.0)")
    lines = path.read_text(encoding="utf-8").splitlines()
    head, *rest = PYTORCH_CITED[key]
    assert head in lines[first - 1], f"PyTorch {version} {rel}:{first} is {lines[first - 1].strip()!r}, not {head!r}"
    span = "\n".join(lines[first - 1:last])
    assert not [t for t in rest if t not in span], f"PyTorch {version} {rel}:{first}-{last} lacks {rest}"
