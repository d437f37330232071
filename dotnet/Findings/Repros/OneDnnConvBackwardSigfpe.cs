// onednn-conv-backward-sigfpe: a strided 1x1 convolution's backward kills the process with
// SIGFPE (integer divide by zero) on an AMD CPU whose CPUID cache leaf 0x8000001D answers
// all zero, as in some VMs.
//
// x = randn[2,512,8,8] (requires_grad), w = randn[1024,512,1,1], conv2d stride 2,
// sum().backward(): ResNet50's downsampling shortcut in its last stage. oneDNN 3.7 (inside
// LibTorch 2.10) reads that leaf on every AMD CPU, takes each cache to be 1 byte, and its
// strided backward-data convolution then divides by zero while choosing its blocking, for five
// (in, out) channel pairs it special-cases, 512 -> 1024 among them. The crash takes the process
// down, so each convolution runs in its own child process: the crashing shape with oneDNN's
// default ISA, the same with ONEDNN_MAX_CPU_ISA=SSE41 (no brgemm kernels: it runs) and a
// control, 512 -> 768 channels (not special-cased: it runs). On a CPU that describes its
// caches (or is not AMD) the defect cannot show: the repro then says NOT-APPLICABLE.
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace Findings;

public static class OneDnnConvBackwardSigfpe
{
    const int SigFpeExit = 128 + 8;   // how .NET reports a child killed by SIGFPE

    public static int Child(string[] args)
    {
        int ic = int.Parse(args[0]), oc = int.Parse(args[1]);
        manual_seed(0);
        using var x = randn(new long[] { 2, ic, 8, 8 }).requires_grad_(true);
        using var w = randn(new long[] { oc, ic, 1, 1 });
        using var y = nn.functional.conv2d(x, w, strides: new long[] { 2, 2 });
        using var s = y.sum();
        s.backward();
        Console.WriteLine($"BACKWARD ok, grad shape [{string.Join(",", x.grad!.shape)}]");
        return 0;
    }

    /// <summary>True on an AMD CPU whose CPUID leaf 0x8000001D, subleaf 0, is all zero; null
    /// where CPUID cannot be run.</summary>
    static bool? AmdCacheLeafZero()
    {
        if (!X86Base.IsSupported) return null;
        var (_, b, c, d) = X86Base.CpuId(0, 0);
        var vendor = string.Concat(new[] { b, d, c }.Select(r => System.Text.Encoding.ASCII.GetString(BitConverter.GetBytes(r))));
        if (vendor != "AuthenticAMD") return false;
        var (a1, b1, c1, d1) = X86Base.CpuId(unchecked((int)0x8000001D), 0);
        return a1 == 0 && b1 == 0 && c1 == 0 && d1 == 0;
    }

    public static int Run(string[] args)
    {
        var report = new Report();
        var zero = AmdCacheLeafZero();
        bool avx2 = Avx2.IsSupported;
        report.Add($"AMD CPUID leaf 0x8000001D all zero: {(zero is null ? "unknown" : zero.ToString())}; avx2={avx2}");

        bool Backward(string label, int ic, int oc, string? isa)
        {
            var (code, stdout, stderr) = Program.RunChild(new[] { "child-conv-backward-sigfpe", ic.ToString(), oc.ToString() },
                new Dictionary<string, string?> { ["ONEDNN_MAX_CPU_ISA"] = isa, ["DNNL_MAX_CPU_ISA"] = null });
            var what = $"conv2d(randn[2,{ic},8,8], randn[{oc},{ic},1,1], stride 2).sum().backward() with ONEDNN_MAX_CPU_ISA={isa ?? "(unset)"}";
            if (code == SigFpeExit)
            {
                report.Add($"{label}: {what}: killed by SIGFPE (exit {code})");
                return true;
            }
            if (code != 0) throw new InvalidOperationException($"child ({label}) exited {code}:\n{stdout}\n{stderr}");
            var ok = stdout.Split('\n').FirstOrDefault(l => l.StartsWith("BACKWARD ")) ?? "no output";
            report.Add($"{label}: {what}: {ok[9..].TrimEnd()}");
            return false;
        }

        var crashed = Backward("default", 512, 1024, null);
        var control = Backward("control", 512, 768, null);
        var sse = Backward("capped", 512, 1024, "SSE41");
        bool applicable = zero == true && avx2;
        if (control)
            throw new InvalidOperationException("the control shape (512 -> 768 channels) crashed too: another defect\n" + string.Join("\n", report.Evidence));
        if (crashed && !applicable)
            throw new InvalidOperationException("SIGFPE on a CPU that describes its caches (or lacks AVX2): not the cause the report names\n" + string.Join("\n", report.Evidence));
        if (crashed)
            return report.Finish(Outcome.Reproduced, "a strided 1x1 convolution's backward is killed by SIGFPE on this AMD CPU with an all-zero cache leaf"
                                                     + (sse ? " (ONEDNN_MAX_CPU_ISA=SSE41 crashes too)" : "; with ONEDNN_MAX_CPU_ISA=SSE41 it runs"));
        if (applicable)
            return report.Finish(Outcome.Fixed, "no crash on this AMD CPU with an all-zero cache leaf");
        return report.Finish(Outcome.NotApplicable, "not reproducible on this CPU (it describes its caches in CPUID leaf 0x8000001D, is not AMD, or lacks AVX2): the backward runs here");
    }
}
