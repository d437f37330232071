// f32-avx512-conv: on this AMD EPYC VM, float32 convolution in LibTorch 2.10 gives wrong sums.
//
// conv2d (padding k/2) of an all-ones float32 input [N, C, 4, 4] with an all-ones weight
// [4, C, k, k]: every interior output is C * k * k, exact in float32. Measured 2026-12-05 on
// an AMD EPYC VM with AVX-512: where oneDNN blocks channels by 16 (its AVX-512 kernels) the sums
// are short when C > 16 leaves a partial block of 16 (17-31, 33-47, ...); capped at AVX2 oneDNN
// blocks by 8 and the sums are short when C > 8 leaves a partial block of 8 (9-15, 17-23, ...;
// C = 24 is then right); capped at SSE41 every shape is right. Batch 1 is right because
// PyTorch's conv2d does not hand a batch of 1 to oneDNN here. oneDNN reads ONEDNN_MAX_CPU_ISA
// once per process, so each setting runs in a child process. Without AVX-512 the repro says
// NOT-APPLICABLE when the sums are right.
using TorchSharp;
using static TorchSharp.torch;

namespace Findings;

public static class F32Avx512Conv
{
    // (batch, channels, kernel): the interior of each output is channels * kernel * kernel.
    // (2, 24, 3) is googlenet's inception4b.branch3.1.conv (24 channels, batch 2); (2, 12, 3)
    // leaves a partial block of 8, not of 16.
    static readonly (int N, int C, int K)[] Shapes =
        { (2, 24, 3), (2, 40, 3), (2, 12, 3), (1, 24, 3), (2, 16, 3), (2, 32, 3), (2, 24, 1) };
    static readonly (string Label, string? Isa)[] Settings =
        { ("default", null), ("ONEDNN_MAX_CPU_ISA=AVX2", "AVX2"), ("ONEDNN_MAX_CPU_ISA=SSE41", "SSE41") };

    public static int Child(string[] args)
    {
        foreach (var (n, c, k) in Shapes)
        {
            using var x = ones(new long[] { n, c, 4, 4 }, ScalarType.Float32);
            using var w = ones(new long[] { 4, c, k, k }, ScalarType.Float32);
            using var y = nn.functional.conv2d(x, w, padding: new long[] { k / 2, k / 2 });
            using var inner = k > 1 ? y[.., .., 1..^1, 1..^1] : y.alias();
            var values = inner.contiguous().flatten().data<float>().ToArray().Distinct().OrderBy(v => v).ToArray();
            float expected = c * k * k;
            var verdict = values.Length == 1 && values[0] == expected ? "right" : "WRONG";
            Console.WriteLine($"CONV {verdict} conv2d(ones[{n},{c},4,4], ones[4,{c},{k},{k}]) float32 interior: expected {expected}, got {{{string.Join(", ", values.Take(6))}}}");
        }
        return 0;
    }

    public static int Run(string[] args)
    {
        var report = new Report();
        var flags = File.Exists("/proc/cpuinfo")
            ? (File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("flags"))?.Split(':', 2)[1]
                .Split(' ', StringSplitOptions.RemoveEmptyEntries) ?? Array.Empty<string>())
            : Array.Empty<string>();
        bool avx512Core = new[] { "avx512f", "avx512bw", "avx512vl", "avx512dq" }.All(flags.Contains);
        var avx512 = flags.Where(f => f.StartsWith("avx512")).OrderBy(f => f).ToArray();
        report.Add($"CPU flags seen: {(avx512.Length > 0 ? string.Join(" ", avx512) : "no avx512*")}; avx2={flags.Contains("avx2")}");

        int Wrong(string label, string? isa)
        {
            var (code, stdout, stderr) = Program.RunChild(new[] { "child-f32-conv" },
                new Dictionary<string, string?> { ["ONEDNN_MAX_CPU_ISA"] = isa, ["DNNL_MAX_CPU_ISA"] = null });
            if (code != 0) throw new InvalidOperationException($"f32 conv child ({label}) exited {code}:\n{stdout}\n{stderr}");
            var lines = stdout.Split('\n').Where(l => l.StartsWith("CONV ")).Select(l => l[5..].TrimEnd()).ToArray();
            if (lines.Length != Shapes.Length) throw new InvalidOperationException($"f32 conv child ({label}) printed {lines.Length} results:\n{stdout}");
            foreach (var l in lines) report.Add($"{label}: {l}");
            return lines.Count(l => l.StartsWith("WRONG"));
        }

        var wrong = Settings.Select(s => Wrong(s.Label, s.Isa)).ToArray();
        var capped = string.Join("; ", Settings.Skip(1).Select((s, i) => $"{s.Label}: {wrong[i + 1]} wrong"));
        if (wrong[0] == 0)
            return avx512Core
                ? report.Finish(Outcome.Fixed, $"float32 convolutions of ones are right by default on this AVX-512 CPU ({capped})")
                : report.Finish(Outcome.NotApplicable, $"no avx512f/bw/vl/dq on this CPU, and the convolutions are right by default ({capped})");
        var where = avx512Core ? "on this AVX-512 CPU" : "on this CPU WITHOUT AVX-512 (oneDNN's AVX2 path: partial blocks of 8 channels)";
        return report.Finish(Outcome.Reproduced, $"{where} {wrong[0]} of {Shapes.Length} float32 conv2d of ones give wrong sums by default "
            + $"(batch >= 2, channels that leave a partial channel block); {capped}");
    }
}
