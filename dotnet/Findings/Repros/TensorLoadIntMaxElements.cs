// tensor-load-int-max-elements: static Tensor.Load refuses a tensor of more than int.MaxValue elements.
//
// Writes a well-formed TorchSharp tensor file (the format Tensor.Save writes: LEB128 dtype
// code, rank, dims, then the raw bytes) of 2**31 + 17 uint8 zeros, as a sparse file (it
// takes no disk space), and loads it with the static torch.Tensor.Load(path).
// Tensor.Load checks `totalSize > int.MaxValue` on the ELEMENT count and throws
// NotImplementedException("Loading tensors larger than 2GB") before reading any data.
// PyTorch and libtorch load such tensors; TorchSharp can create and Save them.
using TorchSharp;
using static TorchSharp.torch;

namespace Findings;

public static class TensorLoadIntMaxElements
{
    static void Leb128(Stream s, long value)
    {
        var v = (ulong)value;
        do
        {
            byte b = (byte)(v & 0x7f);
            v >>= 7;
            if (v != 0) b |= 0x80;
            s.WriteByte(b);
        } while (v != 0);
    }

    public static int Run(string[] args)
    {
        const long numel = (1L << 31) + 17;
        var report = new Report();
        var path = Path.Combine(Path.GetTempPath(), $"findings-huge-{Environment.ProcessId}.dat");
        try
        {
            using (var f = File.Create(path))
            {
                Leb128(f, (long)ScalarType.Byte);
                Leb128(f, 1);
                Leb128(f, numel);
                f.SetLength(f.Position + numel); // sparse: the data bytes read back as zeros
            }
            report.Add($"file {path}: uint8 tensor of shape [{numel}] ({numel} elements, {new FileInfo(path).Length} bytes), zeros");
            try
            {
                using var t = Tensor.Load(path);
                report.Add($"Tensor.Load: ok, shape [{string.Join(", ", t.shape)}], dtype {t.dtype}");
                bool right = t.numel() == numel && t.dtype == ScalarType.Byte && t.max().item<byte>() == 0;
                if (!right) throw new InvalidOperationException("Tensor.Load returned the wrong tensor:\n" + string.Join("\n", report.Evidence));
                return report.Finish(Outcome.Fixed, $"static Tensor.Load loads a tensor of {numel} (> int.MaxValue) elements");
            }
            catch (NotImplementedException exc)
            {
                report.Add($"Tensor.Load: {exc.GetType().FullName}: {exc.Message}");
                return report.Finish(Outcome.Reproduced, $"static Tensor.Load refuses {numel} elements (> int.MaxValue = {int.MaxValue}): \"{exc.Message}\"");
            }
        }
        finally
        {
            File.Delete(path);
        }
    }
}
