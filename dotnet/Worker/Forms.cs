// The file forms of the routes (docs/routes.md, docs/protocol.md "format"): "dat" is TorchSharp's
// own Module.load/save, optimizer state-dict files and Tensor.Load/Save; "pth", "safetensors" and
// "checkpoint" go through TorchSharp.PyBridge, compiled in when the build pins it (PYBRIDGE).
using System.Collections;
using System.Reflection;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
#if PYBRIDGE
using TorchSharp.PyBridge;
#endif

namespace Worker;

public static class Forms
{
#if PYBRIDGE
    public static readonly string[] Supported = ["dat", "pth", "safetensors", "checkpoint"];
    public static string? PyBridgeVersion =>
        typeof(PyBridgeModuleExtensions).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()
            ?.InformationalVersion ?? typeof(PyBridgeModuleExtensions).Assembly.GetName().Version?.ToString();
#else
    public static readonly string[] Supported = ["dat"];
    public static string? PyBridgeVersion => null;
#endif

    // A single tensor on PyBridge's roads travels as the one-entry dict {"tensor": t}.
    const string TensorKey = "tensor";

    /// <summary>The request's "format" (default "dat"), one of <paramref name="allowed"/>.</summary>
    public static string Of(Fields r, string op, params string[] allowed)
    {
        var format = r.Str("format", "dat");
        if (!allowed.Contains(format))
            throw new ParseError($"{op}.format: '{format}' is not one of {string.Join(", ", allowed)}");
        if (!Supported.Contains(format))
            throw new Skip($"format '{format}' needs TorchSharp.PyBridge, which this worker was built without");
        return format;
    }

    public static void LoadModule(nn.Module m, string format, string path, bool strict, string[] skip)
    {
        switch (format)
        {
            case "dat": m.load(path, strict: strict, skip: skip); break;
#if PYBRIDGE
            case "pth": m.load_py(path, strict: strict, skip: skip.ToList()); break;
            case "safetensors": m.load_safetensors(path, strict: strict, skip: skip.ToList()); break;
            case "checkpoint": m.load_checkpoint(path, null, strict, skip.ToList(), null, useTqdm: false); break;
#endif
            default: throw new ParseError($"load_module.format: '{format}'");
        }
    }

    public static void SaveModule(nn.Module m, string format, string path)
    {
        switch (format)
        {
            case "dat": m.save(path); break;
#if PYBRIDGE
            case "pth": m.save_py(path); break;
            case "safetensors": m.save_safetensors(path); break;
#endif
            default: throw new ParseError($"save_module.format: '{format}'");
        }
    }

    public static void LoadOptimizer(OptimizerHelper opt, string format, string path)
    {
        switch (format)
        {
            case "dat": opt.load_state_dict(path); break;
#if PYBRIDGE
            case "pth": opt.load_py(path); break;
#endif
            default: throw new ParseError($"load_optimizer.format: '{format}'");
        }
    }

    public static void SaveOptimizer(OptimizerHelper opt, string format, string path)
    {
        switch (format)
        {
            case "dat": opt.save_state_dict(path); break;
#if PYBRIDGE
            case "pth": opt.save_py(path); break;
#endif
            default: throw new ParseError($"save_optimizer.format: '{format}'");
        }
    }

    /// <summary>Load the single tensor of <paramref name="input"/> and save it to <paramref name="output"/>
    /// in the same form; the tensor loaded.</summary>
    public static Tensor Roundtrip(string format, string input, string output)
    {
        switch (format)
        {
            case "dat":
            {
                var t = Tensor.Load(input);
                t.Save(output);
                return t;
            }
#if PYBRIDGE
            case "pth":
            {
                var t = One(PyTorchUnpickler.UnpickleStateDict(input), input);
                PyTorchPickler.PickleStateDict(output, new Dictionary<string, Tensor> { [TensorKey] = t });
                return t;
            }
            case "safetensors":
            {
                var t = One(Safetensors.LoadStateDict(input), input);
                Safetensors.SaveStateDict(output, new Dictionary<string, Tensor> { [TensorKey] = t });
                return t;
            }
#endif
            default: throw new ParseError($"tensor_roundtrip.format: '{format}'");
        }
    }

    static Tensor One(IDictionary dict, string path)
    {
        if (dict.Count != 1 || !dict.Contains(TensorKey) || dict[TensorKey] is not Tensor t)
            throw new InvalidDataException(
                $"{path}: a single-tensor file holds one tensor under '{TensorKey}'; it holds [{string.Join(", ", dict.Keys.Cast<object>().Select(k => k.ToString()).Order(StringComparer.Ordinal))}]");
        return t;
    }
}
