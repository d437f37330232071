// The worker's ops (docs/protocol.md): one Session holds the model and optimizer between requests.
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using M = TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor>;

namespace Worker;

/// <summary>The worker's state between requests: one model, at most one optimizer.</summary>
public sealed class Session
{
    M? model;
    optim.Optimizer? optimizer;
    Device device = CPU;
    Dictionary<string, Parameter> parameters = [];

    // The ops, in the order the unknown-op error lists them: the one list of op names.
    static readonly OrderedDictionary<string, Func<Session, Fields, JsonObject>> Ops = new()
    {
        ["hello"] = (_, _) => Hello(),
        ["build"] = (s, r) => s.Build(r),
        ["load_module"] = (s, r) => s.LoadModule(r),
        ["save_module"] = (s, r) => s.SaveModule(r),
        ["load_optimizer"] = (s, r) => s.LoadOptimizer(r),
        ["save_optimizer"] = (s, r) => s.SaveOptimizer(r),
        ["step"] = (s, r) => s.Step(r),
        ["train"] = (s, r) => s.Train(r),
        ["forward"] = (s, r) => s.Forward(r),
        ["tensor_roundtrip"] = (_, r) => TensorRoundtrip(r),
        ["jit_run"] = (_, r) => JitRun(r),
        ["digest"] = (s, _) => s.Digest(),
        ["parameters"] = (s, _) => new JsonObject { ["names"] = Strings(s.Model.named_parameters().Select(p => p.name)) },
        ["shutdown"] = (_, _) => [],
    };

    public JsonObject Dispatch(string op, Fields r) =>
        Ops.TryGetValue(op, out var run) ? run(this, r)
            : throw new ParseError($"unknown op '{op}' (known: {string.Join(", ", Ops.Keys)})");

    M Model => model ?? throw new InvalidOperationException("no model: send 'build' first");

    OptimizerHelper Persistable
    {
        get
        {
            var opt = optimizer ?? throw new InvalidOperationException("no optimizer: 'build' was sent without one");
            if (opt is LBFGS) throw new Skip("TorchSharp has no file form for LBFGS");
            return opt as OptimizerHelper ?? throw new InvalidOperationException($"{opt.GetType().Name} has no file form");
        }
    }

    static JsonArray Strings(IEnumerable<string> xs) => new(xs.Select(x => (JsonNode?)JsonValue.Create(x)).ToArray());

    static JsonObject Hello()
    {
        var asm = typeof(torch).Assembly;
        var info = asm.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
                   ?? asm.GetName().Version?.ToString() ?? "?";
        return new JsonObject
        {
            ["protocol"] = Program.Protocol,
            ["implementation"] = "TorchSharp",
            ["version"] = info.Split('+')[0],
            ["version_informational"] = info,
            ["libtorch"] = __version__,          // loads the native libraries: fails here when they cannot load
            ["runtime"] = RuntimeInformation.FrameworkDescription,
            ["os"] = RuntimeInformation.OSDescription,
            ["cuda"] = cuda.is_available(),
            ["threads"] = torch.get_num_threads(),
            ["onednn_max_cpu_isa"] = Environment.GetEnvironmentVariable("ONEDNN_MAX_CPU_ISA"),
            ["optimizers"] = Strings(Optimizers.Supported),
            ["pybridge"] = Forms.PyBridgeVersion,
            ["forms"] = Strings(Forms.Supported),
            ["modules"] = Strings(ModuleBuilder.Factories.Keys),
        };
    }

    // The module holding the state named `name` ("a.b.weight" -> (a.b, "weight")).
    static (nn.Module owner, string leaf) Owner(Dictionary<string, nn.Module> modules, nn.Module m, string name, string op)
    {
        var dot = name.LastIndexOf('.');
        if (dot < 0) return (m, name);
        return modules.TryGetValue(name[..dot], out var o) ? (o, name[(dot + 1)..])
            : throw new ParseError($"{op}: no module '{name[..dot]}'");
    }

    // Tied weights: [[target, source], ...] makes the parameter named target the very same
    // Parameter object as source (PyTorch: model.dec.weight = model.enc.weight).
    static void Tie(nn.Module m, System.Text.Json.JsonElement pairs)
    {
        var parameters = m.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var modules = m.named_modules().ToDictionary(x => x.name, x => x.module);
        foreach (var pair in pairs.EnumerateArray())
        {
            var target = pair[0].GetString()!;
            var source = pair[1].GetString()!;
            if (!parameters.TryGetValue(source, out var p)) throw new ParseError($"tie: no parameter named '{source}'");
            var (owner, leaf) = Owner(modules, m, target, "tie");
            // Modules with a typed property (Linear.weight, ...) re-register through its setter;
            // register_parameter refuses a name that is already registered.
            var prop = owner.GetType().GetProperty(leaf);
            if (prop is not null && prop.CanWrite && prop.PropertyType.IsAssignableFrom(p.GetType())) prop.SetValue(owner, p);
            else owner.register_parameter(leaf, p);
        }
    }

    // Buffers that are views of other state: [{name, of, dim, start, length}, ...] registers
    // buffer `name` as of.detach().narrow(dim, start, length), sharing of's memory
    // (PyTorch: register_buffer(name, of.detach().narrow(...))).
    static void Views(nn.Module m, System.Text.Json.JsonElement views)
    {
        var modules = m.named_modules().ToDictionary(x => x.name, x => x.module);
        int i = 0;
        foreach (var v in views.EnumerateArray())
        {
            var f = new Fields(v, $"views[{i++}]");
            var name = f.Str("name");
            var of = f.Str("of");
            var state = m.state_dict();
            if (!state.TryGetValue(of, out var source)) throw new ParseError($"views: no parameter or buffer named '{of}'");
            var (owner, leaf) = Owner(modules, m, name, "views");
            owner.register_buffer(leaf, source.detach().narrow(f.Long("dim"), f.Long("start"), f.Long("length")));
        }
    }

    // Extra buffers: [{name, shape, persistent, fill}, ...] registers buffer `name` holding
    // `fill` everywhere, in the model's dtype and device (PyTorch: register_buffer(name,
    // torch.full(...), persistent=...)); a non-persistent one stays out of state_dict.
    static void Buffers(nn.Module m, System.Text.Json.JsonElement buffers, ScalarType dtype, Device dev)
    {
        var modules = m.named_modules().ToDictionary(x => x.name, x => x.module);
        int i = 0;
        foreach (var b in buffers.EnumerateArray())
        {
            var f = new Fields(b, $"buffers[{i++}]");
            var name = f.Str("name");
            var (owner, leaf) = Owner(modules, m, name, "buffers");
            owner.register_buffer(leaf, full(f.Longs("shape"), f.Double("fill"), dtype: dtype, device: dev), f.Bool("persistent", true));
        }
    }

    // Frozen parameters: ["name", ...] get requires_grad = false (still state, not trained).
    static void Freeze(nn.Module m, System.Text.Json.JsonElement names)
    {
        var parameters = m.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var n in names.EnumerateArray())
        {
            var name = n.GetString() ?? throw new ParseError("frozen: names must be strings");
            if (!parameters.TryGetValue(name, out var p)) throw new ParseError($"frozen: no parameter named '{name}'");
            p.requires_grad = false;
        }
    }

    JsonObject Build(Fields r)
    {
        var spec = r.Obj("model", "model");
        var dtype = Enc.Dtype(r.Str("dtype"));
        var deviceName = r.Str("device");
        var seed = r.Long("seed");
        var optSpec = r.ObjOrNull("optimizer");
        var optSpecLabelled = optSpec is Fields o ? new Fields(o.Element, "optimizer") : null;
        var dev = deviceName switch
        {
            "cpu" => CPU,
            "cuda" => cuda.is_available() ? CUDA : throw new Skip("CUDA not available in this TorchSharp build/machine"),
            _ => throw new ParseError($"build: device must be 'cpu' or 'cuda', got '{deviceName}'"),
        };

        optimizer?.Dispose();
        model?.Dispose();
        optimizer = null;
        model = null;
        parameters = [];

        // A failed build leaves the session empty (later ops say "no model"), never half built.
        manual_seed(seed);
        var m = ModuleBuilder.Build(spec);
        try
        {
            m.to(dtype);
            m.to(dev);
            if (r.Has("tie")) Tie(m, r.Array("tie"));
            if (r.Has("buffers")) Buffers(m, r.Array("buffers"), dtype, dev);
            if (r.Has("frozen")) Freeze(m, r.Array("frozen"));
            if (r.Has("views")) Views(m, r.Array("views"));
            var named = m.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            var opt = optSpecLabelled is Fields os ? Optimizers.Build(os, named) : null;
            (model, optimizer, parameters, device) = (m, opt, named, dev);
        }
        catch
        {
            m.Dispose();
            throw;
        }
        return new JsonObject
        {
            ["parameters"] = Strings(m.named_parameters().Select(p => p.name)),
            ["state_keys"] = Strings(m.state_dict().Keys),
        };
    }

    JsonObject LoadModule(Fields r)
    {
        var path = r.Str("path");
        var strict = r.Bool("strict", true);
        var skip = r.Strs("skip", []);
        Forms.LoadModule(Model, Forms.Of(r, "load_module", "dat", "pth", "safetensors", "checkpoint"), path, strict, skip);
        return [];
    }

    JsonObject SaveModule(Fields r)
    {
        var path = r.Str("path");
        Forms.SaveModule(Model, Forms.Of(r, "save_module", "dat", "pth", "safetensors"), path);
        return [];
    }

    JsonObject LoadOptimizer(Fields r)
    {
        var path = r.Str("path");
        Forms.LoadOptimizer(Persistable, Forms.Of(r, "load_optimizer", "dat", "pth"), path);
        return [];
    }

    JsonObject SaveOptimizer(Fields r)
    {
        var path = r.Str("path");
        Forms.SaveOptimizer(Persistable, Forms.Of(r, "save_optimizer", "dat", "pth"), path);
        return [];
    }

    JsonObject Step(Fields r)
    {
        var grads = r.Obj("grads");
        var paths = new Dictionary<string, string>();
        foreach (var p in grads.Element.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.String) throw new ParseError($"step.grads: '{p.Name}' must be a path string");
            paths[p.Name] = p.Value.GetString()!;
        }
        _ = Model;
        foreach (var name in paths.Keys.Where(n => !parameters.ContainsKey(n)))
            throw new ParseError($"step.grads: no parameter named '{name}' (model has: {string.Join(", ", parameters.Keys)})");
        var opt = optimizer ?? throw new InvalidOperationException("no optimizer: 'build' was sent without one");
        if (opt is LBFGS) throw new Skip("LBFGS steps need a closure; the 'step' op supplies fixed gradients");
        using (no_grad())
        {
            foreach (var (name, param) in parameters)
            {
                if (paths.TryGetValue(name, out var path))
                {
                    var g = Tensor.Load(path);
                    param.grad = g.dtype == param.dtype && g.device == param.device ? g : g.to(param.dtype, param.device);
                }
                else
                {
                    param.grad = null;
                }
            }
        }
        opt.step();
        return [];
    }

    JsonObject Train(Fields r)
    {
        var steps = r.Long("steps");
        var seed = r.Long("seed");
        var shape = r.Longs("input_shape");
        var inputSpec = r.ObjOrNull("input");
        var m = Model;
        var gen = new Generator((ulong)seed);
        var losses = new JsonArray();
        m.train();
        if (!m.parameters().Any())
        {
            // Nothing to optimise (as the Python side): train-mode forwards still move buffers.
            var bufferDtype = m.state_dict().Values.Where(t => t.is_floating_point()).Select(t => t.dtype)
                .DefaultIfEmpty(ScalarType.Float32).First();
            using var noGrad = torch.no_grad();
            for (long i = 0; i < steps; i++)
            {
                using var scope = NewDisposeScope();
                m.forward(SpecInput.Make(shape, gen, bufferDtype, device, inputSpec));
            }
            return new JsonObject { ["losses"] = losses };
        }
        var opt = optimizer ?? optim.SGD(m.parameters(), 0.01);
        var dtype = m.parameters().First().dtype;
        for (long i = 0; i < steps; i++)
        {
            using var scope = NewDisposeScope();
            var x = SpecInput.Make(shape, gen, dtype, device, inputSpec);
            double lossValue;
            if (opt is LBFGS)
            {
                var loss = opt.step(() =>
                {
                    opt.zero_grad();
                    var l = m.forward(x).square().mean();
                    l.backward();
                    return l;
                });
                lossValue = loss.to(ScalarType.Float64).item<double>();
            }
            else
            {
                var loss = m.forward(x).square().mean();
                opt.zero_grad();
                loss.backward();
                opt.step();
                lossValue = loss.detach().to(ScalarType.Float64).item<double>();
            }
            losses.Add(Enc.F64(lossValue));
        }
        opt.zero_grad();
        if (!ReferenceEquals(opt, optimizer)) opt.Dispose();
        return new JsonObject { ["losses"] = losses };
    }

    JsonObject Forward(Fields r)
    {
        var input = r.Str("input");
        var output = r.Str("output");
        var train = r.Bool("train", false);
        var m = Model;
        if (train) m.train(); else m.eval();
        using var scope = NewDisposeScope();
        using (no_grad())
        {
            var x = Tensor.Load(input).to(device);
            var y = m.forward(x).detach().cpu().contiguous();
            y.Save(output);
        }
        return [];
    }

    // TorchScript: torch.jit.load a file PyTorch saved, report its state, run it on an input
    // (eval mode, no grad) and optionally save it again with torch.jit.save.
    static JsonObject JitRun(Fields r)
    {
        var path = r.Str("path");
        var input = r.Str("input");
        var output = r.Str("output");
        var resave = r.StrOrNull("resave");
        using var scope = NewDisposeScope();
        var module = torch.jit.load<Tensor, Tensor>(path);
        module.eval();
        var state = Enc.NamedDigests(module.state_dict());
        using (torch.no_grad())
        {
            var x = Tensor.Load(input);
            module.forward(x).Save(output);
        }
        if (resave is not null) torch.jit.save(module, resave);
        return new JsonObject { ["module"] = state };
    }

    static JsonObject TensorRoundtrip(Fields r)
    {
        var input = r.Str("input");
        var output = r.Str("output");
        var format = Forms.Of(r, "tensor_roundtrip", "dat", "pth", "safetensors");
        using var scope = NewDisposeScope();
        return Enc.Digest(Forms.Roundtrip(format, input, output));
    }

    JsonObject Digest()
    {
        var module = Enc.NamedDigests(Model.state_dict());
        return new JsonObject { ["module"] = module, ["optimizer"] = optimizer is null ? null : Optimizers.Digest(optimizer) };
    }
}
