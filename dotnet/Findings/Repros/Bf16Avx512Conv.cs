// bf16-avx512-conv: on an AVX-512 CPU, bfloat16 convolution in LibTorch 2.10 gives wrong sums.
//
// conv2d of an all-ones bfloat16 input with an all-ones bfloat16 weight: every output is the
// number of products summed (C * kH * kW), exactly representable in bfloat16. On a CPU with
// AVX-512 oneDNN's AVX-512 bf16 kernels return wrong values (known upstream:
// https://github.com/pytorch/pytorch/issues/163347); ONEDNN_MAX_CPU_ISA=AVX2, which caps
// oneDNN at AVX2, gives the right sum. oneDNN reads the variable once per process, so each
// setting runs in its own child process. On a CPU without AVX-512 the defect cannot show:
// the repro then says NOT-APPLICABLE and names the CPU flags it saw.
using TorchSharp;
using static TorchSharp.torch;

namespace Findings;

public static class Bf16Avx512Conv
{
    // (channels, kernel, input size): each conv2d's right answer is channels * kernel * kernel;
    // (1, 2, 2) is pytorch/pytorch#163347's own example (right answer 4)
    static readonly (int C, int K, int H)[] Shapes = { (1, 2, 2), (16, 3, 8), (64, 3, 8), (3, 5, 8) };

    public static int Child(string[] args)
    {
        foreach (var (c, k, h) in Shapes)
        {
            using var x = ones(new long[] { 1, c, h, h }, ScalarType.BFloat16);
            using var w = ones(new long[] { 4, c, k, k }, ScalarType.BFloat16);
            using var y = nn.functional.conv2d(x, w).to(ScalarType.Float32);
            var values = y.flatten().data<float>().ToArray().Distinct().OrderBy(v => v).ToArray();
            float expected = c * k * k;
            var verdict = values.Length == 1 && values[0] == expected ? "right" : "WRONG";
            Console.WriteLine($"CONV {verdict} conv2d(ones[1,{c},{h},{h}], ones[4,{c},{k},{k}]) bfloat16: expected {expected}, got {{{string.Join(", ", values.Take(6))}}}");
        }
        return 0;
    }

    static string[] CpuFlags()
    {
        if (!File.Exists("/proc/cpuinfo")) return Array.Empty<string>();
        var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("flags"));
        return line is null ? Array.Empty<string>() : line.Split(':', 2)[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
    }

    public static int Run(string[] args)
    {
        var report = new Report();
        var flags = CpuFlags();
        var avx512 = flags.Where(f => f.StartsWith("avx512")).OrderBy(f => f).ToArray();
        // oneDNN's avx512_core ISA level needs F, BW, VL and DQ
        bool avx512Core = new[] { "avx512f", "avx512bw", "avx512vl", "avx512dq" }.All(flags.Contains);
        report.Add($"CPU flags seen: {(avx512.Length > 0 ? string.Join(" ", avx512) : "no avx512*")}; avx2={flags.Contains("avx2")}");

        (bool Wrong, string[] Lines) Conv(string label, string? isa)
        {
            var (code, stdout, stderr) = Program.RunChild(new[] { "child-bf16-conv" },
                new Dictionary<string, string?> { ["ONEDNN_MAX_CPU_ISA"] = isa, ["DNNL_MAX_CPU_ISA"] = null });
            if (code != 0) throw new InvalidOperationException($"bf16 conv child ({label}) exited {code}:\n{stdout}\n{stderr}");
            var lines = stdout.Split('\n').Where(l => l.StartsWith("CONV ")).Select(l => l[5..].TrimEnd()).ToArray();
            foreach (var l in lines) report.Add($"{label}: {l}");
            return (lines.Any(l => l.StartsWith("WRONG")), lines);
        }

        var dflt = Conv("default", null);
        var avx2 = Conv("ONEDNN_MAX_CPU_ISA=AVX2", "AVX2");
        if (!avx512Core)
        {
            if (!dflt.Wrong)
                return report.Finish(Outcome.NotApplicable, "not reproducible on this CPU (no avx512f/avx512bw/avx512vl/avx512dq): the bf16 convolutions are right here");
            throw new InvalidOperationException("bf16 conv is wrong on a CPU WITHOUT AVX-512: a different defect\n" + string.Join("\n", report.Evidence));
        }
        if (!dflt.Wrong)
            return report.Finish(Outcome.Fixed, "bf16 convolutions of ones give the right sums on this AVX-512 CPU");
        if (avx2.Wrong)
            throw new InvalidOperationException("bf16 conv is wrong with ONEDNN_MAX_CPU_ISA=AVX2 too: not the AVX-512 path\n" + string.Join("\n", report.Evidence));
        return report.Finish(Outcome.Reproduced, "on this AVX-512 CPU bf16 conv2d of ones gives wrong sums; with ONEDNN_MAX_CPU_ISA=AVX2 they are right");
    }
}
