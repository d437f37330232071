// pybridge-safetensors-offsets-unchecked: TorchSharp.PyBridge 1.4.4's safetensors reader
// (Safetensors.LoadStateDict, under load_safetensors) checks only each entry's byte length
// against its dtype and shape. A header whose entries overlap, and a file with bytes after the
// last entry's data, load without an error; the safetensors package refuses both
// (InvalidOffset / MetadataIncompleteBuffer: scripts/findings/pybridge_safetensors_offsets.py
// gives it the same bytes in the PyTorch 2.6 root).
//
// The files hold a Linear(3, 4)'s state, data = the floats 0..15 (weight 0..11, bias 12..15).
// The overlapping one points "bias" at bytes [0, 16), the first four floats of "weight"'s
// [0, 48), instead of its own [48, 64): load_safetensors then gives bias = [0 1 2 3].
#if PYBRIDGE
using System.Text;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Findings;

public static class PyBridgeSafetensorsOffsetsUnchecked
{
    /// <summary>The bytes of a safetensors file: 8-byte little-endian header length, JSON header, data.</summary>
    public static byte[] File(string header, float[] data)
    {
        var json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + data.Length * 4];
        BitConverter.GetBytes((ulong)json.Length).CopyTo(bytes, 0);
        json.CopyTo(bytes, 8);
        Buffer.BlockCopy(data, 0, bytes, 8 + json.Length, data.Length * 4);
        return bytes;
    }

    public const string Overlapping = "{\"weight\":{\"dtype\":\"F32\",\"shape\":[4,3],\"data_offsets\":[0,48]},"
                                      + "\"bias\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}";
    public const string Valid = "{\"weight\":{\"dtype\":\"F32\",\"shape\":[4,3],\"data_offsets\":[0,48]},"
                                + "\"bias\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[48,64]}}";

    public static float[] Data() => Enumerable.Range(0, 16).Select(i => (float)i).ToArray();   // weight 0..11, bias 12..15

    static string Load(string path, out string bias)
    {
        manual_seed(1);
        var lin = nn.Linear(3, 4);
        try
        {
            lin.load_safetensors(path);
            bias = string.Join(" ", lin.bias!.detach().data<float>().ToArray());
            return "ok";
        }
        catch (Exception exc)
        {
            bias = "-";
            return $"{exc.GetType().Name}: {exc.Message}";
        }
    }

    public static int Run(string[] args)
    {
        var report = new Report();
        var dir = Directory.CreateTempSubdirectory("findings-pybridge-st-").FullName;
        try
        {
            string valid = Path.Combine(dir, "valid.safetensors"), overlap = Path.Combine(dir, "overlap.safetensors");
            string trailing = Path.Combine(dir, "trailing.safetensors");
            System.IO.File.WriteAllBytes(valid, File(Valid, Data()));
            System.IO.File.WriteAllBytes(overlap, File(Overlapping, Data()));
            System.IO.File.WriteAllBytes(trailing, [.. File(Valid, Data()), 0xde, 0xad, 0xbe, 0xef]);
            var control = Load(valid, out var validBias);
            report.Add($"control, a valid file (bias at [48, 64)): {control}, bias = [{validBias}]");
            var o = Load(overlap, out var overlapBias);
            report.Add($"bias at [0, 16), inside weight's [0, 48): {o}, bias = [{overlapBias}] (safetensors: InvalidOffset(\"weight\"))");
            var t = Load(trailing, out var trailingBias);
            report.Add($"4 bytes after the last entry: {t}, bias = [{trailingBias}] (safetensors: MetadataIncompleteBuffer)");
            if (control != "ok" || validBias != "12 13 14 15")
                throw new InvalidOperationException("the valid control file did not load as expected:\n" + string.Join("\n", report.Evidence));
            if (o != "ok" && t != "ok")
                return report.Finish(Outcome.Fixed, "load_safetensors refuses overlapping offsets and trailing bytes");
            return report.Finish(Outcome.Reproduced,
                (o == "ok" ? $"load_safetensors accepts overlapping data_offsets (bias = [{overlapBias}], weight's bytes)" : "")
                + (o == "ok" && t == "ok" ? " and " : "")
                + (t == "ok" ? "bytes after the last entry" : "") + ", which the safetensors library refuses");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
#endif
