// groupnorm-uninitialised-affine: TorchSharp's GroupNorm leaves weight and bias uninitialised.
//
// PyTorch's GroupNorm.reset_parameters() sets weight to ones and bias to zeros
// (torch/nn/modules/normalization.py). TorchSharp's constructor allocates both with
// torch.empty and never fills them, so they hold whatever the allocator hands back. To make
// that visible every time, the repro first frees a few tensors filled with 7.25 of the
// same size, then builds GroupNorm (the freed memory is usually reused); LayerNorm, which
// does initialise, is the control.
using TorchSharp;
using static TorchSharp.torch;

namespace Findings;

public static class GroupNormUninitialisedAffine
{
    public static int Run(string[] args)
    {
        const int channels = 6, tries = 5;
        var report = new Report();
        int wrong = 0;
        for (int i = 0; i < tries; i++)
        {
            for (int k = 0; k < 4; k++) full(channels, 7.25f).Dispose();
            using var gn = nn.GroupNorm(2, channels);
            var w = gn.weight.data<float>().ToArray();
            var b = gn.bias!.data<float>().ToArray();
            bool ok = w.All(x => x == 1f) && b.All(x => BitConverter.SingleToInt32Bits(x) == 0);
            if (!ok) wrong++;
            report.Add($"GroupNorm(2, {channels}) #{i + 1}: weight=[{string.Join(", ", w)}] bias=[{string.Join(", ", b)}]{(ok ? "" : "  <- not ones/zeros")}");
        }
        using (var ln = nn.LayerNorm(channels))
            report.Add($"control LayerNorm({channels}): weight=[{string.Join(", ", ln.weight!.data<float>().ToArray())}] "
                       + $"bias=[{string.Join(", ", ln.bias!.data<float>().ToArray())}]");
        report.Add("PyTorch: GroupNorm weight = ones, bias = zeros");

        if (wrong == 0)
            return report.Finish(Outcome.Fixed, $"GroupNorm's weight is ones and bias zeros in all {tries} builds");
        return report.Finish(Outcome.Reproduced, $"{wrong} of {tries} fresh GroupNorm modules do not start with weight = 1, bias = 0 (their values are leftover memory)");
    }
}
