// pybridge-save-py-view-offset: TorchSharp.PyBridge's save_py writes a state tensor that is a view
// with a storage offset as (storage = the view's own elements, storage_offset = the view's
// offset into its base), a pair torch.load cannot rebuild.
//
// A Linear(3, 4) with a buffer v = weight.detach().narrow(0, 1, 2) (rows 1-2, storage offset 3).
// PyTorchPickler's TensorDeconstructor (PyTorchPickler.cs:224-252, line 243) records tensor.storage_offset()
// = 3, while its persistentId (lines 71-114) writes only the view's 6 elements
// (WriteBytesToStream) as the storage, numel 6. PyTorch's _rebuild_tensor_v2 views a 6-element
// storage at offset 3 with shape [2, 3]: "RuntimeError: Trying to resize storage that is not
// resizable" (PyTorch 1.13 and 2.6, weights_only or not; scripts/findings/pybridge_saved_view.py
// loads data/pybridge_saved_view.pth, written by this repro with `--write PATH`).
#if PYBRIDGE
using System.IO.Compression;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Findings;

public static class PyBridgeSavePyViewOffset
{
    public static int Run(string[] args)
    {
        var report = new Report();
        var dir = Directory.CreateTempSubdirectory("findings-pybridge-view-").FullName;
        try
        {
            manual_seed(1);
            var lin = nn.Linear(3, 4);
            var v = lin.weight!.detach().narrow(0, 1, 2);
            lin.register_buffer("v", v);
            var path = args.Length >= 2 && args[0] == "--write" ? args[1] : Path.Combine(dir, "view.pth");
            lin.save_py(path);
            report.Add($"buffer v = weight.narrow(0, 1, 2): shape [{string.Join(", ", v.shape)}], storage_offset {v.storage_offset()}, "
                       + $"{v.numel()} elements; saved with save_py to {path}");
            using var zip = ZipFile.OpenRead(path);
            var sizes = zip.Entries.Where(e => e.FullName.Contains("/data/")).Select(e => $"{e.FullName}: {e.Length} bytes").ToList();
            report.Add($"storage entries: {string.Join("; ", sizes)} (each tensor gets its own storage of its own elements)");
            long needed = (v.storage_offset() + v.numel()) * v.ElementSize;
            bool tooShort = zip.Entries.Any(e => e.FullName.Contains("/data/") && e.Length == v.numel() * v.ElementSize) && v.storage_offset() > 0;
            report.Add($"v's pickle records storage_offset {v.storage_offset()} (PyTorchPickler.cs: tensor.storage_offset()), so PyTorch "
                       + $"needs {needed} bytes of storage; its entry has {v.numel() * v.ElementSize}");
            report.Add("torch.load of such a file (scripts/findings/pybridge_saved_view.py): RuntimeError: Trying to resize storage that is not resizable");
            return tooShort
                ? report.Finish(Outcome.Reproduced, $"save_py writes a view at storage offset {v.storage_offset()} with a storage of only its "
                                + $"{v.numel()} elements: torch.load cannot rebuild it")
                : report.Finish(Outcome.Fixed, "save_py writes a view's storage so that its offset fits");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
#else
namespace Findings;

public static class PyBridgeSavePyViewOffset
{
    public static int Run(string[] args) => new Report().Finish(Outcome.NotApplicable,
        "this build has no TorchSharp.PyBridge (no pin for this TorchSharp version in dotnet/torchsharp-versions.json)");
}
#endif
