// Optimizer specs (docs/protocol.md "Case specs") -> TorchSharp optimizers, and the optimizer
// digest. Per-optimizer knowledge is one table row: the TorchSharp class, the option and
// state field names in docs/format.md's order, PyTorch's defaults, and the PyTorch kwargs
// TorchSharp has no field for. Fields are read and written by name (TorchSharp's Options
// and State classes expose them as public fields with these exact names).
using System.Collections;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Worker;

public sealed record OptKind(
    Type Type,                                  // TorchSharp class; its Name is the file's class name
    string[] Options,                           // option fields after initial_lr, lr (docs/format.md order)
    string[] States,                            // per-parameter state fields (docs/format.md order)
    Dictionary<string, object?> TorchDefaults,  // PyTorch kwargs and their defaults
    string[] TorchOnly);                        // PyTorch kwargs with no TorchSharp field: only null/false accepted

public static class Optimizers
{
    static readonly double[] Betas = [0.9, 0.999];
    static readonly string[] AdamOpts = ["beta1", "beta2", "eps", "weight_decay"];
    static readonly string[] Common = ["foreach", "capturable", "differentiable"];

    static Dictionary<string, object?> D(params (string, object?)[] kv) => kv.ToDictionary(p => p.Item1, p => p.Item2);

    /// <summary>Keyed by the spec's (PyTorch's) type name.</summary>
    public static readonly Dictionary<string, OptKind> Table = new()
    {
        ["SGD"] = new(typeof(SGD), ["momentum", "dampening", "weight_decay", "nesterov", "maximize"], ["momentum_buffer"],
            D(("lr", 1e-3), ("momentum", 0.0), ("dampening", 0.0), ("weight_decay", 0.0), ("nesterov", false), ("maximize", false)),
            ["foreach", "differentiable", "fused"]),
        ["ASGD"] = new(typeof(ASGD), ["maximize", "lambd", "alpha", "weight_decay", "t0"], ["step", "eta", "mu", "ax"],
            D(("lr", 1e-2), ("lambd", 1e-4), ("alpha", 0.75), ("t0", 1e6), ("weight_decay", 0.0), ("maximize", false)), Common),
        ["Rprop"] = new(typeof(Rprop), ["maximize", "etaminus", "etaplus", "min_step", "max_step"], ["step", "prev", "step_size"],
            D(("lr", 1e-2), ("etas", new[] { 0.5, 1.2 }), ("step_sizes", new[] { 1e-6, 50.0 }), ("maximize", false)), Common),
        ["RMSprop"] = new(typeof(RMSProp), ["maximize", "momentum", "alpha", "eps", "weight_decay", "centered"],
            ["step", "square_avg", "momentum_buffer", "grad_avg"],
            D(("lr", 1e-2), ("alpha", 0.99), ("eps", 1e-8), ("weight_decay", 0.0), ("momentum", 0.0), ("centered", false), ("maximize", false)), Common),
        ["Adam"] = new(typeof(Adam), [.. AdamOpts, "amsgrad", "maximize"], ["step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
            D(("lr", 1e-3), ("betas", Betas), ("eps", 1e-8), ("weight_decay", 0.0), ("amsgrad", false), ("maximize", false)),
            [.. Common, "fused", "decoupled_weight_decay"]),
        ["AdamW"] = new(typeof(AdamW), [.. AdamOpts, "amsgrad", "maximize"], ["step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
            D(("lr", 1e-3), ("betas", Betas), ("eps", 1e-8), ("weight_decay", 1e-2), ("amsgrad", false), ("maximize", false)),
            [.. Common, "fused"]),
        ["NAdam"] = new(typeof(NAdam), [.. AdamOpts, "momentum_decay"], ["step", "mu_product", "exp_avg", "exp_avg_sq"],
            D(("lr", 2e-3), ("betas", Betas), ("eps", 1e-8), ("weight_decay", 0.0), ("momentum_decay", 4e-3)),
            [.. Common, "maximize", "decoupled_weight_decay"]),
        ["RAdam"] = new(typeof(RAdam), AdamOpts, ["step", "exp_avg", "exp_avg_sq"],
            D(("lr", 1e-3), ("betas", Betas), ("eps", 1e-8), ("weight_decay", 0.0)),
            [.. Common, "maximize", "decoupled_weight_decay"]),
        ["Adamax"] = new(typeof(Adamax), AdamOpts, ["step", "exp_avg", "exp_inf"],
            D(("lr", 2e-3), ("betas", Betas), ("eps", 1e-8), ("weight_decay", 0.0)), [.. Common, "maximize"]),
        ["Adadelta"] = new(typeof(Adadelta), ["rho", "eps", "weight_decay", "maximize"], ["step", "square_avg", "acc_delta"],
            D(("lr", 1.0), ("rho", 0.9), ("eps", 1e-6), ("weight_decay", 0.0), ("maximize", false)), Common),
        ["Adagrad"] = new(typeof(Adagrad), ["lr_decay", "initial_accumulator_value", "eps", "weight_decay"], ["step", "sum"],
            D(("lr", 1e-2), ("lr_decay", 0.0), ("weight_decay", 0.0), ("initial_accumulator_value", 0.0), ("eps", 1e-10)),
            ["foreach", "differentiable", "fused", "maximize"]),
    };

    static readonly Dictionary<string, object?> LbfgsDefaults = D(("lr", 1.0), ("max_iter", 20L), ("max_eval", null),
        ("tolerance_grad", 1e-7), ("tolerance_change", 1e-9), ("history_size", 100L), ("line_search_fn", null));

    public static IEnumerable<string> Supported => Table.Keys.Append("LBFGS");

    /// <summary>PyTorch kwarg -> TorchSharp field names (tuples split in two; "lr" stays "lr").</summary>
    static IEnumerable<(string, object?)> Expand(string kwarg, object? value, string where)
    {
        (string, string)? pair = kwarg switch
        {
            "betas" => ("beta1", "beta2"),
            "etas" => ("etaminus", "etaplus"),
            "step_sizes" => ("min_step", "max_step"),
            _ => null,
        };
        if (pair is not (string a, string b)) return [(kwarg, value)];
        if (value is not double[] { Length: 2 } v) throw new ParseError($"{where}: '{kwarg}' must be a list of two numbers");
        return [(a, v[0]), (b, v[1])];
    }

    static object? Value(JsonElement e, string where, string name) => e.ValueKind switch
    {
        JsonValueKind.Number => e.TryGetInt64(out var l) && name is "max_iter" or "max_eval" or "history_size" ? l : e.GetDouble(),
        JsonValueKind.True or JsonValueKind.False => e.GetBoolean(),
        JsonValueKind.Null => null,
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Array => e.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.Number
            ? x.GetDouble() : throw new ParseError($"{where}: '{name}' must be a list of numbers")).ToArray(),
        _ => throw new ParseError($"{where}: '{name}' has an unsupported JSON value {e.ValueKind}"),
    };

    /// <summary>PyTorch kwargs of one spec level (defaults or a group), checked against the known names.</summary>
    static Dictionary<string, object?> Kwargs(Fields f, ICollection<string> known, string kind, string[] skip)
    {
        var d = new Dictionary<string, object?>();
        foreach (var p in f.Element.EnumerateObject())
        {
            if (skip.Contains(p.Name)) continue;
            if (!known.Contains(p.Name))
                throw new ParseError($"{f.Where}: {kind} has no argument '{p.Name}' (known: {string.Join(", ", known)})");
            d[p.Name] = Value(p.Value, f.Where, p.Name);
        }
        return d;
    }

    static Dictionary<string, object?> Merge(params Dictionary<string, object?>[] levels)
    {
        var d = new Dictionary<string, object?>();
        foreach (var level in levels) foreach (var kv in level) d[kv.Key] = kv.Value;
        return d;
    }

    /// <summary>Builds the optimizer; the group order and parameter order are the spec's.</summary>
    public static optim.Optimizer Build(Fields spec, IReadOnlyDictionary<string, Parameter> parameters)
    {
        spec.Only("defaults", "groups");
        var type = spec.Str("type");
        var groupSpecs = spec.Array("groups").EnumerateArray().Select((g, i) => g.ValueKind == JsonValueKind.Object
            ? new Fields(g, $"optimizer.groups[{i}]") : throw new ParseError($"optimizer.groups[{i}] must be an object")).ToList();
        var groupParams = groupSpecs.Select(g => g.Strs("params").Select(n => parameters.TryGetValue(n, out var p) ? p
            : throw new ParseError($"{g.Where}: no parameter named '{n}' (model has: {string.Join(", ", parameters.Keys)})")).ToList()).ToList();

        if (type == "LBFGS") return BuildLbfgs(spec, groupSpecs, groupParams);
        if (!Table.TryGetValue(type, out var kind))
            throw new Skip($"optimizer type '{type}' is not supported by this worker (supported: {string.Join(", ", Supported)})");

        var known = kind.TorchDefaults.Keys.Concat(kind.TorchOnly).ToHashSet();
        var defaults = Merge(kind.TorchDefaults, spec.Has("defaults") ? Kwargs(spec.Obj("defaults"), known, type, []) : []);
        var optionsType = kind.Type.GetNestedType("Options")!;
        var groupType = kind.Type.GetNestedType("ParamGroup")!;
        var groups = Array.CreateInstance(groupType, groupSpecs.Count);
        for (int i = 0; i < groupSpecs.Count; i++)
        {
            var merged = Merge(defaults, Kwargs(groupSpecs[i], known, type, ["params"]));
            var options = (OptimizerOptions)Activator.CreateInstance(optionsType)!;
            foreach (var (name, value) in TorchSharpValues(kind, merged, groupSpecs[i].Where))
            {
                if (name == "lr") { options.LearningRate = ToDouble(value, name); continue; }
                var field = optionsType.GetField(name) ?? throw new InvalidOperationException($"{kind.Type.Name}.Options has no field '{name}'");
                field.SetValue(options, Nullable.GetUnderlyingType(field.FieldType) == typeof(bool) ? ToBool(value, name) : ToDouble(value, name));
            }
            groups.SetValue(Activator.CreateInstance(groupType, groupParams[i], options), i);
        }

        // The constructor's own arguments (its defaults for groups) come from the spec's defaults too.
        var ctor = kind.Type.GetConstructors().Single(c => c.GetParameters()[0].ParameterType.IsAssignableFrom(groups.GetType()));
        var ctorValues = TorchSharpValues(kind, defaults, "optimizer.defaults").ToDictionary(p => p.Item1, p => p.Item2);
        var args = ctor.GetParameters().Select((p, i) => i == 0 ? groups
            : ctorValues.TryGetValue(p.Name!, out var v) ? (p.ParameterType == typeof(bool) ? ToBool(v, p.Name!) : ToDouble(v, p.Name!))
            : p.DefaultValue).ToArray();
        try { return (optim.Optimizer)ctor.Invoke(args); }
        catch (TargetInvocationException e) when (e.InnerException is not null) { throw e.InnerException; }
    }

    static IEnumerable<(string, object?)> TorchSharpValues(OptKind kind, Dictionary<string, object?> kwargs, string where)
    {
        foreach (var (k, v) in kwargs)
        {
            if (kind.TorchOnly.Contains(k))
            {
                if (v is null or false) continue;
                throw new Skip($"TorchSharp's {kind.Type.Name} has no option '{k}' (requested {JsonSerializer.Serialize(v)})");
            }
            foreach (var pair in Expand(k, v, where)) yield return pair;
        }
    }

    static double ToDouble(object? v, string name) => v is double d ? d : throw new ParseError($"optimizer option '{name}' must be a number");
    static bool ToBool(object? v, string name) => v is bool b ? b : throw new ParseError($"optimizer option '{name}' must be true or false");

    static optim.Optimizer BuildLbfgs(Fields spec, List<Fields> groupSpecs, List<List<Parameter>> groupParams)
    {
        var known = LbfgsDefaults.Keys.ToHashSet();
        var kw = Merge(LbfgsDefaults, spec.Has("defaults") ? Kwargs(spec.Obj("defaults"), known, "LBFGS", []) : []);
        if (groupSpecs.Count != 1) throw new Skip("LBFGS supports a single parameter group only");
        kw = Merge(kw, Kwargs(groupSpecs[0], known, "LBFGS", ["params"]));
        if (kw["line_search_fn"] is not null) throw new Skip($"TorchSharp's LBFGS has no line_search_fn (requested {kw["line_search_fn"]})");
        long Long(string k) => kw[k] switch { long l => l, double d when d == Math.Floor(d) => (long)d, _ => throw new ParseError($"LBFGS '{k}' must be an integer") };
        return optim.LBFGS(groupParams[0], lr: ToDouble(kw["lr"], "lr"), max_iter: Long("max_iter"),
            max_eval: kw["max_eval"] is null ? null : Long("max_eval"), tolerange_grad: ToDouble(kw["tolerance_grad"], "tolerance_grad"),
            tolerance_change: ToDouble(kw["tolerance_change"], "tolerance_change"), history_size: Long("history_size"));
    }

    public static OptKind? KindOf(optim.Optimizer opt) => Table.Values.FirstOrDefault(k => k.Type == opt.GetType());

    /// <summary>{"class", "groups": [{initial_lr, lr, options...}], "states": [{step, ...}]} (docs/protocol.md).</summary>
    public static JsonObject Digest(optim.Optimizer opt)
    {
        var groups = new JsonArray();
        var states = new JsonArray();
        var result = new JsonObject { ["class"] = opt.GetType().Name, ["groups"] = groups, ["states"] = states };
        if (opt is not OptimizerHelper helper || KindOf(opt) is not OptKind kind)
        {
            // LBFGS (native): learning rates only, no per-parameter state reachable.
            foreach (var g in opt.ParamGroups)
                groups.Add(new JsonObject { ["initial_lr"] = Enc.F64(g.InitialLearningRate), ["lr"] = Enc.F64(g.LearningRate) });
            return result;
        }
        var sd = helper.state_dict();
        foreach (var options in sd.Options)
        {
            var g = new JsonObject
            {
                ["initial_lr"] = Enc.F64(options.InitialLearningRate),
                ["lr"] = options.LearningRate is double lr ? Enc.F64(lr) : null,
            };
            foreach (var name in kind.Options) g[name] = Field(options, name);
            groups.Add(g);
        }
        foreach (var state in sd.State)
        {
            var s = new JsonObject();
            foreach (var name in kind.States) s[name] = Field(state, name);
            states.Add(s);
        }
        return result;
    }

    static JsonNode? Field(object owner, string name)
    {
        var field = owner.GetType().GetField(name, BindingFlags.Public | BindingFlags.Instance)
            ?? throw new InvalidOperationException($"{owner.GetType().FullName} has no field '{name}'");
        return field.GetValue(owner) switch
        {
            null => null,
            double d => Enc.F64(d),
            bool b => b,
            long l => l,
            int i => i,
            Tensor t => Enc.Digest(t),
            var other => throw new InvalidOperationException($"{owner.GetType().Name}.{name}: unexpected {other.GetType()}"),
        };
    }
}
