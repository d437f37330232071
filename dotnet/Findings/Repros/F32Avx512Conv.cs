// f32-avx512-conv: on this AVX-512 VM, float32 convolution in LibTorch 2.10 gives wrong sums.
//
// conv2d (padding 1) of an all-ones float32 input [N, C, 4, 4] with an all-ones weight
// [4, C, 3, 3]: every interior output is C * 9, exact in float32. Measured 2026-12-05 on an
// AMD EPYC VM with AVX-512: wrong (short by multiples of 8, or NaN) when N >= 2 and C is above
// 16 and not a multiple of 16; right for N = 1, C = 16 or 32, 1x1 kernels, and for every shape
// with ONEDNN_MAX_CPU_ISA=AVX2. oneDNN reads the variable once per process, so each setting runs
// in a child process; without AVX-512 the repro says NOT-APPLICABLE when the sums are right.
using TorchSharp;
using static TorchSharp.torch;

namespace Findings;

public static class F32Avx512Conv
{
    // (batch, channels, kernel): the interior of each output is channels * kernel * kernel
    static readonly (int N, int C, int K)[] Shapes = { (2, 24, 3), (2, 40, 3), (1, 24, 3), (2, 16, 3), (2, 32, 3), (2, 24, 1) };

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
        report.Add($"CPU flags seen: {string.Join(" ", flags.Where(f => f.StartsWith("avx512")).OrderBy(f => f))}");

        bool[] Conv(string label, string? isa)
        {
            var (code, stdout, stderr) = Program.RunChild(new[] { "child-f32-conv" },
                new Dictionary<string, string?> { ["ONEDNN_MAX_CPU_ISA"] = isa, ["DNNL_MAX_CPU_ISA"] = null });
            if (code != 0) throw new InvalidOperationException($"f32 conv child ({label}) exited {code}:\n{stdout}\n{stderr}");
            var lines = stdout.Split('\n').Where(l => l.StartsWith("CONV ")).Select(l => l[5..].TrimEnd()).ToArray();
            foreach (var l in lines) report.Add($"{label}: {l}");
            return lines.Select(l => l.StartsWith("WRONG")).ToArray();
        }

        var dflt = Conv("default", null);
        var avx2 = Conv("ONEDNN_MAX_CPU_ISA=AVX2", "AVX2");
        int wrong = dflt.Count(b => b);
        if (wrong == 0)
            return avx512Core ? report.Finish(Outcome.Fixed, "float32 convolutions of ones are right on this AVX-512 CPU")
                              : report.Finish(Outcome.NotApplicable, "no avx512f/bw/vl/dq on this CPU, and the convolutions are right");
        if (!avx512Core)
            throw new InvalidOperationException("float32 conv is wrong on a CPU WITHOUT AVX-512: a different defect\n" + string.Join("\n", report.Evidence));
        return report.Finish(Outcome.Reproduced, $"on this AVX-512 CPU {wrong} of {dflt.Length} float32 conv2d of ones give wrong sums "
            + "(batch >= 2, channels above 16 and not a multiple of 16, 3x3)"
            + (avx2.Any(b => b) ? "; ONEDNN_MAX_CPU_ISA=AVX2 did not make them right" : "; with ONEDNN_MAX_CPU_ISA=AVX2 all are right"));
    }
}
