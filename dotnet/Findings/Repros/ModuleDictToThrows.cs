// moduledict-to-throws: a module holding a ModuleDict cannot be converted with .to(dtype).
//
// Module._toEpilog builds `GetType().GetProperties(...).ToDictionary(prop => prop.Name)`;
// ModuleDict<T> has two indexers (this[int], this[string]) and C# names every indexer
// property "Item", so the dictionary throws ArgumentException "An item with the same key
// has already been added. Key: Item". _to(dtype) always runs _toEpilog, so .to(dtype) throws
// even for the dtype the module already has; _to(device) runs it only when the device
// changes, so .to(device) throws only on a real move (shown with the meta device, which a
// CPU-only machine has). PyTorch: nn.ModuleDict converts like any module.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Findings;

public sealed class DictHolder : nn.Module<Tensor, Tensor>
{
    private readonly ModuleDict<nn.Module> blocks;

    public DictHolder() : base(nameof(DictHolder))
    {
        blocks = nn.ModuleDict<nn.Module>(("a", nn.Linear(3, 3)), ("b", nn.Linear(3, 2)));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => ((Linear)blocks["b"]).forward(((Linear)blocks["a"]).forward(x));
}

public sealed class ListHolder : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<nn.Module> blocks;

    public ListHolder() : base(nameof(ListHolder))
    {
        blocks = nn.ModuleList<nn.Module>(nn.Linear(3, 3));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => ((Linear)blocks[0]).forward(x);
}

public static class ModuleDictToThrows
{
    static string Try(string what, Func<nn.Module> act, out bool threw)
    {
        try
        {
            var m = act();
            threw = false;
            var dtypes = string.Join(",", m.parameters().Select(p => p.dtype.ToString()).Distinct());
            var devices = string.Join(",", m.parameters().Select(p => p.device.ToString()).Distinct());
            return $"{what}: ok (parameters now {dtypes} on {devices})";
        }
        catch (Exception exc)
        {
            threw = true;
            // the TorchSharp frames nearest the throw say where it comes from
            var frames = (exc.StackTrace ?? "").Split('\n').Select(l => l.Trim())
                .Where(l => l.Contains("TorchSharp.")).Take(5);
            return $"{what}: {exc.GetType().Name}: {exc.Message}\n      " + string.Join("\n      ", frames);
        }
    }

    public static int Run(string[] args)
    {
        var report = new Report();
        report.Add(Try("DictHolder().to(float64)", () => new DictHolder().to(ScalarType.Float64), out var toF64));
        report.Add(Try("DictHolder().to(float32) (its own dtype)", () => new DictHolder().to(ScalarType.Float32), out var toF32));
        report.Add(Try("DictHolder().to(CPU) (device unchanged)", () => new DictHolder().to(CPU), out var toCpu));
        report.Add(Try("DictHolder().to(meta) (device changes)", () => new DictHolder().to(new Device(DeviceType.META)), out var toMeta));
        report.Add(Try("ModuleDict alone .to(float64)", () => nn.ModuleDict<nn.Module>(("a", nn.Linear(3, 3))).to(ScalarType.Float64), out _));
        report.Add(Try("control: a module holding a ModuleList .to(float64)", () => new ListHolder().to(ScalarType.Float64), out _));

        if (!toF64 && !toF32 && !toMeta)
            return report.Finish(Outcome.Fixed, "a module holding a ModuleDict converts with .to(dtype) and .to(device)");
        if (toF64 && toF32)
            return report.Finish(Outcome.Reproduced,
                ".to(dtype) of a module holding a ModuleDict throws (any dtype, its own included)"
                + (toMeta ? "; .to(device) throws when the device changes" : "; .to(device) did not throw here")
                + (toCpu ? "" : ", not when it stays the same"));
        throw new InvalidOperationException("unexpected mix:\n" + string.Join("\n", report.Evidence));
    }
}
