// sequential-own-buffer-dropped: a buffer registered on nn.Sequential itself is not in its state_dict.
//
// Sequential overrides named_parameters/named_buffers to walk only its children (it never
// looks at its own registered buffers), and state_dict is built from those. PyTorch's
// Sequential is an ordinary Module: seq.register_buffer("offset", t) puts "offset" first in
// seq.state_dict(). The same buffer on a plain custom Module is listed (control).
using TorchSharp;
using static TorchSharp.torch;

namespace Findings;

public sealed class BufferHolder : nn.Module<Tensor, Tensor>
{
    private readonly TorchSharp.Modules.Linear lin = nn.Linear(2, 2);

    public BufferHolder() : base(nameof(BufferHolder))
    {
        RegisterComponents();
        register_buffer("offset", full(2, 0.5f));
    }

    public override Tensor forward(Tensor x) => lin.forward(x);
}

public static class SequentialOwnBufferDropped
{
    public static int Run(string[] args)
    {
        var report = new Report();
        var seq = nn.Sequential(nn.Linear(2, 2));
        seq.register_buffer("offset", full(2, 0.5f), persistent: true);
        var keys = seq.state_dict().Keys.ToList();
        var buffers = seq.named_buffers().Select(b => b.name).ToList();
        var control = new BufferHolder().state_dict().Keys.ToList();
        report.Add($"seq = Sequential(Linear(2, 2)); seq.register_buffer(\"offset\", ...)");
        report.Add($"seq.state_dict() keys: [{string.Join(", ", keys)}]");
        report.Add($"seq.named_buffers(): [{string.Join(", ", buffers)}]");
        report.Add($"control, custom Module with the same buffer: [{string.Join(", ", control)}]");
        report.Add("PyTorch: seq.state_dict() keys: [offset, 0.weight, 0.bias]");
        string loadMsg;
        try
        {
            var sd = new Dictionary<string, Tensor> { ["offset"] = full(2, 1f), ["0.weight"] = zeros(2, 2), ["0.bias"] = zeros(2) };
            seq.load_state_dict(sd, strict: true);
            loadMsg = "strict load_state_dict of PyTorch's three keys: ok";
        }
        catch (Exception exc) { loadMsg = $"strict load_state_dict of PyTorch's three keys: {exc.GetType().Name}: {exc.Message}"; }
        report.Add(loadMsg);
        // the same for a parameter registered on the Sequential, and for .to(): by the same cause
        var seq2 = nn.Sequential(nn.Linear(2, 2));
        seq2.register_parameter("scale", new TorchSharp.Modules.Parameter(ones(2)));
        report.Add($"also: seq.register_parameter(\"scale\", ...): state_dict keys [{string.Join(", ", seq2.state_dict().Keys)}]");
        seq.to(ScalarType.Float64);
        var offset = seq.get_buffer("offset");
        report.Add($"also: after seq.to(float64) the Linear weight is {seq.parameters().First().dtype}, 'offset' is {offset?.dtype.ToString() ?? "gone"}");

        if (keys.Contains("offset"))
            return report.Finish(Outcome.Fixed, "Sequential's state_dict contains its own buffer 'offset'");
        if (!control.Contains("offset"))
            throw new InvalidOperationException("control failed: a custom Module does not list its buffer either\n" + string.Join("\n", report.Evidence));
        return report.Finish(Outcome.Reproduced, "Sequential's own persistent buffer 'offset' is missing from its state_dict (a custom Module lists it)");
    }
}
