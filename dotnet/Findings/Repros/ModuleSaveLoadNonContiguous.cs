// module-save-load-non-contiguous: Module.save and Module.load throw on a non-contiguous state tensor.
//
// A module whose buffer is a transposed (non-contiguous) tensor, e.g. a view of a column of a
// weight or any .t() result. Module.save writes every state tensor with Tensor.Save ->
// WriteBytesToStream, Module.load reads into the existing tensor with ReadBytesFromStream;
// both start with Tensor._validate, which throws InvalidOperationException("Bytes() called
// on non-contiguous tensor.") instead of copying through a contiguous temporary. PyTorch's
// torch.save writes the storage and load_state_dict copies with copy_, strides and all.
using TorchSharp;
using static TorchSharp.torch;

namespace Findings;

public sealed class StridedState : nn.Module<Tensor, Tensor>
{
    private readonly TorchSharp.Modules.Linear lin = nn.Linear(2, 3);

    public StridedState(bool strided) : base(nameof(StridedState))
    {
        RegisterComponents();
        // same name, shape and dtype either way; only the strides differ
        var table = arange(6, ScalarType.Float32).reshape(2, 3);
        register_buffer("table", strided ? table.t() : table.t().contiguous());
    }

    public override Tensor forward(Tensor x) => lin.forward(x);
}

public static class ModuleSaveLoadNonContiguous
{
    public static int Run(string[] args)
    {
        var report = new Report();
        var dir = Directory.CreateTempSubdirectory("findings-strided-").FullName;
        try
        {
            var strided = new StridedState(strided: true);
            var buf = strided.named_buffers().Single(b => b.name == "table").buffer;
            report.Add($"buffer 'table': shape [{string.Join(", ", buf.shape)}], strides [{string.Join(", ", buf.stride())}], is_contiguous={buf.is_contiguous()}");

            string saveFile = Path.Combine(dir, "strided.dat");
            bool saveThrew = false;
            try { strided.save(saveFile); report.Add("Module.save: ok"); }
            catch (Exception exc) { saveThrew = true; report.Add($"Module.save: {exc.GetType().Name}: {exc.Message}"); }

            string contiguousFile = Path.Combine(dir, "contiguous.dat");
            var twin = new StridedState(strided: false);
            twin.save(contiguousFile);
            bool loadThrew = false;
            try
            {
                new StridedState(strided: true).load(contiguousFile);
                report.Add("Module.load of the contiguous twin's file: ok");
            }
            catch (Exception exc) { loadThrew = true; report.Add($"Module.load of the contiguous twin's file: {exc.GetType().Name}: {exc.Message}"); }
            report.Add("control: the contiguous twin saved without error");
            try { buf.Save(Path.Combine(dir, "tensor.dat")); report.Add("Tensor.Save of the buffer alone: ok"); }
            catch (Exception exc) { report.Add($"Tensor.Save of the buffer alone (dotnet/TorchSharp#1255): {exc.GetType().Name}: {exc.Message}"); }
            report.Add("PyTorch: torch.save(m.state_dict()) and m.load_state_dict(...) accept non-contiguous tensors");

            if (!saveThrew && !loadThrew)
            {
                // a fix must also be right: the reloaded strided buffer holds the saved values
                var back = new StridedState(strided: true);
                back.load(saveFile);
                var got = back.named_buffers().Single(b => b.name == "table").buffer;
                if (!got.equal(buf).item<bool>())
                    throw new InvalidOperationException("save/load ran but the values changed:\n" + string.Join("\n", report.Evidence));
                return report.Finish(Outcome.Fixed, "Module.save and Module.load handle a non-contiguous buffer");
            }
            return report.Finish(Outcome.Reproduced,
                (saveThrew && loadThrew ? "Module.save and Module.load both throw"
                 : saveThrew ? "Module.save throws (load works)" : "Module.load throws (save works)")
                + " on a non-contiguous buffer: \"Bytes() called on non-contiguous tensor.\"");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
