// pybridge-load-py-ignores-layout: TorchSharp.PyBridge's load_py writes a file's tensor into the
// module's tensor through the FILE's shape, strides and storage offset, and reads the bytes
// from the start of the file's storage.
//
// Two files torch.save wrote (data/make_pybridge_layouts.py, PyTorch 1.13):
//  1. pybridge_view.pth: Linear(3, 4) with weight = arange(12).reshape(4, 3) and a buffer
//     v = weight.narrow(0, 1, 2) (rows 1-2: storage offset 3 into the weight's storage).
//     Loaded into the same module (v a view of the weight, as PyTorch built it), load_py
//     succeeds and leaves weight rows 1-2 = [0 1 2; 3 4 5] and v = [0..5]: it wrote the first
//     6 values of the storage at offset 3. PyTorch's load_state_dict gives weight = arange(12),
//     v = [3..8]. Into a module whose v is a tensor of its own, load_py throws (as_strided out
//     of bounds; shaltielshmid/TorchSharp.PyBridge#18).
//  2. pybridge_small.pth: a weight of shape [2, 3] for a Linear(3, 4) ([4, 3]). load_py with
//     strict = true succeeds and overwrites the first 6 values only; PyTorch raises "size
//     mismatch for weight".
#if PYBRIDGE
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Findings;

public static class PyBridgeLoadPyIgnoresLayout
{
    static string Values(Tensor t) => string.Join(" ", t.detach().contiguous().to(ScalarType.Float32).data<float>().ToArray());

    static TorchSharp.Modules.Linear Linear(bool viewBuffer, bool ownBuffer)
    {
        manual_seed(1);
        var lin = nn.Linear(3, 4);
        if (viewBuffer) lin.register_buffer("v", lin.weight!.detach().narrow(0, 1, 2));
        if (ownBuffer) lin.register_buffer("v", zeros(2, 3));
        return lin;
    }

    public static int Run(string[] args)
    {
        var report = new Report();
        var data = args.Length > 0 ? args[0] : Path.Combine(AppContext.BaseDirectory, "data");
        var version = typeof(PyBridgeModuleExtensions).Assembly.GetName().Version;
        report.Add($"TorchSharp.PyBridge {version}");

        // 1. a view buffer, loaded into a module with the same aliasing
        var lin = Linear(viewBuffer: true, ownBuffer: false);
        lin.load_py(Path.Combine(data, "pybridge_view.pth"));
        var weight = Values(lin.weight!);
        var v = Values(lin.get_buffer("v")!);
        report.Add($"pybridge_view.pth (v = weight rows 1-2, storage offset 3) into a module whose v views the weight: weight = [{weight}], v = [{v}]");
        report.Add("PyTorch's load_state_dict of the same file: weight = [0 1 2 3 4 5 6 7 8 9 10 11], v = [3 4 5 6 7 8]");
        bool viewWrong = weight != "0 1 2 3 4 5 6 7 8 9 10 11" || v != "3 4 5 6 7 8";

        // ... and into a module whose v is a tensor of its own (PyBridge#18)
        string own;
        try { Linear(viewBuffer: false, ownBuffer: true).load_py(Path.Combine(data, "pybridge_view.pth")); own = "ok"; }
        catch (Exception exc) { own = $"{exc.GetType().Name}: {exc.Message.Split('\n')[0]}"; }
        report.Add($"the same file into a module whose v is its own [2, 3] tensor: {own}");

        // 2. a weight of the wrong shape, strict load
        var small = Linear(viewBuffer: false, ownBuffer: false);
        var before = Values(small.weight!);
        string smallResult;
        try { small.load_py(Path.Combine(data, "pybridge_small.pth"), strict: true); smallResult = "ok"; }
        catch (Exception exc) { smallResult = $"{exc.GetType().Name}: {exc.Message.Split('\n')[0]}"; }
        report.Add($"pybridge_small.pth (weight [2, 3]) into Linear(3, 4) (weight [4, 3]), strict: {smallResult}; weight before = [{before}], after = [{Values(small.weight!)}]");
        report.Add("PyTorch: RuntimeError: size mismatch for weight: copying a param with shape torch.Size([2, 3]) from checkpoint, "
                   + "the shape in current model is torch.Size([4, 3])");
        bool shapeAccepted = smallResult == "ok";

        if (!viewWrong && !shapeAccepted)
            return report.Finish(Outcome.Fixed, "load_py loads the view's own values and refuses a tensor of another shape");
        return report.Finish(Outcome.Reproduced,
            (viewWrong ? "load_py silently writes the start of a view's storage into it (v = [" + v + "], PyTorch [3 4 5 6 7 8])" : "")
            + (viewWrong && shapeAccepted ? "; " : "")
            + (shapeAccepted ? "a strict load_py accepts a [2, 3] weight for a [4, 3] parameter and overwrites 6 of its 12 values" : ""));
    }
}
#else
namespace Findings;

public static class PyBridgeLoadPyIgnoresLayout
{
    public static int Run(string[] args) => new Report().Finish(Outcome.NotApplicable,
        "this build has no TorchSharp.PyBridge (no pin for this TorchSharp version in dotnet/torchsharp-versions.json)");
}
#endif
