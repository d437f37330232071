// pybridge-save-keeps-old-tail: TorchSharp.PyBridge's path overloads of
// PyTorchPickler.PickleStateDict and Safetensors.SaveStateDict open the file with
// File.OpenWrite, which does not truncate: saving over an older, larger file leaves the
// older file's tail behind the new content (PyTorchPickler.cs line 23, Safetensors.cs
// line 50; the module and optimizer save_py/save_safetensors use File.Create and are fine).
//
// Saves a 4096-element dict to a path, then a 3-element dict over it, and the 3-element dict
// to a new path: the two files of the same dict must have the same length. Then reads the
// overwritten files back with PyBridge's own readers and says what they return.
#if PYBRIDGE
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Findings;

public static class PyBridgeSaveKeepsOldTail
{
    public static int Run(string[] args)
    {
        var report = new Report();
        var dir = Directory.CreateTempSubdirectory("findings-pybridge-");
        try
        {
            var big = new Dictionary<string, Tensor> { ["tensor"] = arange(4096, dtype: ScalarType.Float64) };
            var small = new Dictionary<string, Tensor> { ["tensor"] = ones(3) };
            var stale = new List<string>();
            var savers = new (string Name, Action<string, Dictionary<string, Tensor>> Save, Func<string, Tensor> Load)[]
            {
                ("PyTorchPickler.PickleStateDict", (p, d) => PyTorchPickler.PickleStateDict(p, d),
                 p => (Tensor)PyTorchUnpickler.UnpickleStateDict(p)["tensor"]!),
                ("Safetensors.SaveStateDict", (p, d) => Safetensors.SaveStateDict(p, d),
                 p => Safetensors.LoadStateDict(p)["tensor"]),
            };
            foreach (var (name, save, load) in savers)
            {
                var over = Path.Combine(dir.FullName, name + ".over");
                var fresh = Path.Combine(dir.FullName, name + ".fresh");
                save(over, big);
                long before = new FileInfo(over).Length;
                save(over, small);
                save(fresh, small);
                long after = new FileInfo(over).Length, expected = new FileInfo(fresh).Length;
                report.Add($"{name}: a 3-element dict saved over a {before}-byte file leaves {after} bytes; " +
                           $"saved to a new path it is {expected} bytes");
                string back;
                try
                {
                    var t = load(over);
                    back = $"{t.dtype}[{string.Join(", ", t.shape)}]";
                }
                catch (Exception exc)
                {
                    back = $"{exc.GetType().Name}: {exc.Message}";
                }
                report.Add($"  PyBridge's own reader on the overwritten file: {back}");
                if (after != expected) stale.Add(name);
            }
            return stale.Count > 0
                ? report.Finish(Outcome.Reproduced, $"{string.Join(" and ", stale)} keep the older file's tail when saving over it")
                : report.Finish(Outcome.Fixed, "saving over an older, larger file leaves exactly the new content");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
#endif
