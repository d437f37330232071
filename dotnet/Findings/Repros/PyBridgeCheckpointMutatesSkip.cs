// pybridge-checkpoint-mutates-skip: TorchSharp.PyBridge's load_checkpoint (non-strict, sharded
// index) adds every key of the index that the module lacks to the caller's `skip` list
// (PyBridgeModuleExtensions.cs:372-376). A caller's List<string> comes back changed; a string[]
// (an IList<string> of fixed size, what `skip: new[] { ... }` passes) makes the load throw
// NotSupportedException("Collection was of a fixed size."). load_py and load_safetensors take
// the same parameter and leave it alone.
#if PYBRIDGE
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Findings;

public static class PyBridgeCheckpointMutatesSkip
{
    public static int Run(string[] args)
    {
        var report = new Report();
        var dir = Directory.CreateTempSubdirectory("findings-pybridge-ckpt-").FullName;
        try
        {
            // save_pretrained's sharded safetensors form, with one key ("extra") the module lacks
            Safetensors.SaveStateDict(Path.Combine(dir, "model-00001-of-00002.safetensors"), new Dictionary<string, Tensor> { ["weight"] = ones(4, 3) });
            Safetensors.SaveStateDict(Path.Combine(dir, "model-00002-of-00002.safetensors"), new Dictionary<string, Tensor> { ["bias"] = ones(4), ["extra"] = ones(2) });
            File.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"),
                "{\"metadata\":{},\"weight_map\":{\"weight\":\"model-00001-of-00002.safetensors\","
                + "\"bias\":\"model-00002-of-00002.safetensors\",\"extra\":\"model-00002-of-00002.safetensors\"}}");
            report.Add("a sharded checkpoint (model.safetensors.index.json, 2 shards) of weight, bias and 'extra', loaded non-strict into Linear(3, 4)");

            string arrayResult;
            try { nn.Linear(3, 4).load_checkpoint(dir, strict: false, skip: new[] { "unrelated" }, useTqdm: false); arrayResult = "ok"; }
            catch (Exception exc) { arrayResult = $"{exc.GetType().FullName}: {exc.Message}"; }
            report.Add($"skip: new[] {{ \"unrelated\" }} -> {arrayResult}");

            var mine = new List<string> { "unrelated" };
            var lin = nn.Linear(3, 4);
            lin.load_checkpoint(dir, strict: false, skip: mine, useTqdm: false);
            report.Add($"skip: a List [unrelated] -> loads (weight sum {lin.weight!.sum().item<float>()}); the caller's list afterwards: [{string.Join(", ", mine)}]");

            var control = new[] { "unrelated" };
            manual_seed(1);
            nn.Linear(3, 4).load_safetensors(Path.Combine(dir, "model-00002-of-00002.safetensors"), strict: false, skip: control);
            report.Add("control: load_safetensors(strict: false, skip: an array) of one shard holding a key the module lacks: no exception");

            bool threw = arrayResult != "ok", mutated = mine.Count != 1;
            if (!threw && !mutated)
                return report.Finish(Outcome.Fixed, "load_checkpoint leaves the caller's skip list alone");
            return report.Finish(Outcome.Reproduced,
                (threw ? "load_checkpoint(strict: false) with a skip array throws NotSupportedException (fixed size)" : "")
                + (threw && mutated ? "; " : "")
                + (mutated ? $"with a List it adds [{string.Join(", ", mine.Skip(1))}] to the caller's list" : ""));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
#endif
