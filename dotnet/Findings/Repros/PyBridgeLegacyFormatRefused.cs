// pybridge-legacy-format-refused: TorchSharp.PyBridge reads only the zip form of torch.save
// files; the legacy (pre-1.6) form, which torch.save still writes with
// _use_new_zipfile_serialization=False and torch.load still reads, is refused
// (PyTorchUnpickler.cs lines 38-41: anything not starting with a zip local-file signature is
// taken for the legacy format and refused with NotImplementedException; an empty file gets the
// same message). data/legacy_state_dict.pth is made by data/make_legacy_pth.py (torch 1.13).
#if PYBRIDGE
using TorchSharp.PyBridge;

namespace Findings;

public static class PyBridgeLegacyFormatRefused
{
    public static int Run(string[] args)
    {
        var report = new Report();
        var path = Path.Combine(AppContext.BaseDirectory, "data", "legacy_state_dict.pth");
        report.Add($"file {path}: {new FileInfo(path).Length} bytes, torch.save(..., _use_new_zipfile_serialization=False) of weight[2,3] and bias[2]");
        try
        {
            var sd = PyTorchUnpickler.UnpickleStateDict(path);
            report.Add($"UnpickleStateDict: ok, keys [{string.Join(", ", sd.Keys.Cast<object>())}]");
            return report.Finish(Outcome.Fixed, "PyBridge reads torch.save's legacy format");
        }
        catch (NotImplementedException exc)
        {
            report.Add($"UnpickleStateDict: {exc.GetType().FullName}: {exc.Message}");
            return report.Finish(Outcome.Reproduced, $"PyBridge refuses a legacy-format torch.save file: \"{exc.Message}\"");
        }
    }
}
#endif
