// sequential-tied-weight-listed-once: in nn.Sequential a tied Parameter appears once in state_dict.
//
// Two Linear(3, 3) with the decoder's weight set to the encoder's Parameter (PyTorch:
// model.dec.weight = model.enc.weight). PyTorch's state_dict names the shared tensor under
// both names. TorchSharp's Module.state_dict lists named_parameters() (which removes
// duplicates) and then recurses into registered submodules, so a custom Module gets the
// second name back through the recursion; Sequential keeps its children in a private list
// (never registered as submodules), so only the de-duplicated named_parameters remain.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Findings;

public sealed class TiedPair : nn.Module<Tensor, Tensor>
{
    public readonly Linear enc = nn.Linear(3, 3);
    public readonly Linear dec = nn.Linear(3, 3);

    public TiedPair() : base(nameof(TiedPair))
    {
        dec.weight = enc.weight;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => dec.forward(enc.forward(x));
}

public static class SequentialTiedWeightListedOnce
{
    public static int Run(string[] args)
    {
        var report = new Report();
        var enc = nn.Linear(3, 3);
        var dec = nn.Linear(3, 3);
        dec.weight = enc.weight;
        var seq = nn.Sequential(("0", enc), ("1", dec));
        var seqKeys = seq.state_dict().Keys.ToList();
        var custom = new TiedPair();
        var customKeys = custom.state_dict().Keys.ToList();
        report.Add($"tied by dec.weight = enc.weight (same Parameter: {ReferenceEquals(enc.weight, dec.weight)})");
        report.Add($"Sequential(enc, dec).state_dict(): [{string.Join(", ", seqKeys)}]");
        report.Add($"custom Module {{enc, dec}}.state_dict(): [{string.Join(", ", customKeys)}]");
        report.Add("PyTorch: Sequential: [0.weight, 0.bias, 1.weight, 1.bias]; custom: [enc.weight, enc.bias, dec.weight, dec.bias]");
        try
        {
            var sd = new Dictionary<string, Tensor> { ["0.weight"] = eye(3), ["0.bias"] = zeros(3), ["1.weight"] = eye(3), ["1.bias"] = zeros(3) };
            seq.load_state_dict(sd, strict: true);
            report.Add("strict Sequential.load_state_dict of PyTorch's four keys: ok");
        }
        catch (Exception exc) { report.Add($"strict Sequential.load_state_dict of PyTorch's four keys: {exc.GetType().Name}: {exc.Message}"); }

        bool customBoth = customKeys.Contains("enc.weight") && customKeys.Contains("dec.weight");
        report.Add($"custom Module lists the tied weight under both names: {customBoth}");
        if (seqKeys.Contains("1.weight") && seqKeys.Contains("0.weight"))
            return report.Finish(Outcome.Fixed, "Sequential's state_dict names the tied weight under both names");
        return report.Finish(Outcome.Reproduced,
            "Sequential's state_dict lists the tied weight once (no '1.weight')"
            + (customBoth ? "; a custom Module lists it under both names" : "; a custom Module ALSO lists it once"));
    }
}
