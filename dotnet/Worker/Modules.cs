// Module specs (docs/protocol.md "Case specs") -> TorchSharp modules. One entry per type;
// arguments carry PyTorch's constructor names and defaults.
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using M = TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor>;

namespace Worker;

public static class ModuleBuilder
{
    static readonly string[] Conv = ["in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias"];
    static readonly string[] Rnn = ["input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional"];
    static readonly string[] Norm = ["num_features", "eps", "momentum", "affine", "track_running_stats"];

    public static readonly Dictionary<string, Func<Fields, nn.Module>> Factories = new()
    {
        ["Sequential"] = f =>
        {
            f.Only("children");
            var children = Children(f);
            // TorchSharp's own Sequential when it can hold the children (all Tensor -> Tensor);
            // else the harness's container with the same keys and forward rule (Containers.cs).
            return children.All(c => c.Item2 is M)
                ? Sequential(children.Select(c => (c.Item1, (M)c.Item2)))
                : new SpecContainer("Sequential", children);
        },
        // A custom module whose fields are the named children, in declaration order (like the
        // docs' LeNet1 with one field "layers"); forward runs them in order.
        ["Module"] = f => { f.Only("children"); return new SpecContainer("Module", Children(f)); },
        ["TorchVision"] = Zoo.Build,  // the model zoo: TorchSharp's TorchVision builds it (Zoo.cs)
        ["ModuleList"] = f =>
        {
            f.Only("children");
            var children = Children(f, indexNames: true);
            return new TorchSharp.Modules.ModuleList<nn.Module>(children.Select(c => c.Item2).ToArray());
        },
        ["ModuleDict"] = f =>
        {
            f.Only("children");
            return ModuleDict(Children(f).ToArray());
        },
        ["Linear"] = f =>
        {
            f.Only("in_features", "out_features", "bias");
            return Linear(f.Long("in_features"), f.Long("out_features"), hasBias: f.Bool("bias", true));
        },
        ["Conv1d"] = f =>
        {
            f.Only(Conv);
            return Conv1d(f.Long("in_channels"), f.Long("out_channels"), f.IntOrInts("kernel_size", 1)[0],
                stride: f.Has("stride") ? f.IntOrInts("stride", 1)[0] : 1,
                padding: f.Has("padding") ? f.IntOrInts("padding", 1)[0] : 0,
                dilation: f.Has("dilation") ? f.IntOrInts("dilation", 1)[0] : 1,
                groups: f.Long("groups", 1), bias: f.Bool("bias", true));
        },
        ["Conv2d"] = f =>
        {
            f.Only(Conv);
            return Conv2d(f.Long("in_channels"), f.Long("out_channels"), Pair(f, "kernel_size", null)!.Value,
                stride: Pair(f, "stride", 1), padding: Pair(f, "padding", 0), dilation: Pair(f, "dilation", 1),
                groups: f.Long("groups", 1), bias: f.Bool("bias", true));
        },
        ["Conv3d"] = f =>
        {
            f.Only(Conv);
            return Conv3d(f.Long("in_channels"), f.Long("out_channels"), Triple(f, "kernel_size", null)!.Value,
                stride: Triple(f, "stride", 1), padding: Triple(f, "padding", 0), dilation: Triple(f, "dilation", 1),
                groups: f.Long("groups", 1), bias: f.Bool("bias", true));
        },
        ["ConvTranspose2d"] = f =>
        {
            f.Only([.. Conv, "output_padding"]);
            return ConvTranspose2d(f.Long("in_channels"), f.Long("out_channels"), Pair(f, "kernel_size", null)!.Value,
                stride: Pair(f, "stride", 1), padding: Pair(f, "padding", 0), output_padding: Pair(f, "output_padding", 0),
                dilation: Pair(f, "dilation", 1), groups: f.Long("groups", 1), bias: f.Bool("bias", true));
        },
        ["BatchNorm1d"] = f => { f.Only(Norm); return BatchNorm1d(f.Long("num_features"), f.Double("eps", 1e-5), f.Double("momentum", 0.1), f.Bool("affine", true), f.Bool("track_running_stats", true)); },
        ["BatchNorm2d"] = f => { f.Only(Norm); return BatchNorm2d(f.Long("num_features"), f.Double("eps", 1e-5), f.Double("momentum", 0.1), f.Bool("affine", true), f.Bool("track_running_stats", true)); },
        ["BatchNorm3d"] = f => { f.Only(Norm); return BatchNorm3d(f.Long("num_features"), f.Double("eps", 1e-5), f.Double("momentum", 0.1), f.Bool("affine", true), f.Bool("track_running_stats", true)); },
        ["InstanceNorm1d"] = f => { f.Only(Norm); return InstanceNorm1d(f.Long("num_features"), f.Double("eps", 1e-5), f.Double("momentum", 0.1), f.Bool("affine", false), f.Bool("track_running_stats", false)); },
        ["InstanceNorm2d"] = f => { f.Only(Norm); return InstanceNorm2d(f.Long("num_features"), f.Double("eps", 1e-5), f.Double("momentum", 0.1), f.Bool("affine", false), f.Bool("track_running_stats", false)); },
        ["InstanceNorm3d"] = f => { f.Only(Norm); return InstanceNorm3d(f.Long("num_features"), f.Double("eps", 1e-5), f.Double("momentum", 0.1), f.Bool("affine", false), f.Bool("track_running_stats", false)); },
        ["LayerNorm"] = f =>
        {
            f.Only("normalized_shape", "eps", "elementwise_affine", "bias");
            var shape = f.Element.GetProperty("normalized_shape").ValueKind == System.Text.Json.JsonValueKind.Number
                ? [f.Long("normalized_shape")] : f.Longs("normalized_shape");
            return LayerNorm(shape, f.Double("eps", 1e-5), f.Bool("elementwise_affine", true), f.Bool("bias", true));
        },
        ["GroupNorm"] = f =>
        {
            f.Only("num_groups", "num_channels", "eps", "affine");
            return GroupNorm(f.Long("num_groups"), f.Long("num_channels"), f.Double("eps", 1e-5), f.Bool("affine", true));
        },
        ["Embedding"] = f =>
        {
            f.Only("num_embeddings", "embedding_dim", "padding_idx", "max_norm", "norm_type", "scale_grad_by_freq", "sparse");
            return Embedding(f.Long("num_embeddings"), f.Long("embedding_dim"), padding_idx: f.LongOrNull("padding_idx"),
                max_norm: f.Has("max_norm") ? f.Double("max_norm") : null, norm_type: f.Double("norm_type", 2.0),
                scale_grad_by_freq: f.Bool("scale_grad_by_freq", false), sparse: f.Bool("sparse", false));
        },
        ["PReLU"] = f => { f.Only("num_parameters", "init"); return PReLU(f.Long("num_parameters", 1), f.Double("init", 0.25)); },
        ["ReLU"] = f => { f.Only("inplace"); return ReLU(f.Bool("inplace", false)); },
        ["Tanh"] = f => { f.Only(); return Tanh(); },
        ["Sigmoid"] = f => { f.Only(); return Sigmoid(); },
        ["GELU"] = f =>
        {
            f.Only("approximate");
            return f.Str("approximate", "none") switch
            {
                "none" => GELU(),
                "tanh" => GELU(TorchSharp.Modules.GELU.Approximate.tanh),
                var a => throw new ParseError($"{f.Where}: approximate must be 'none' or 'tanh', got '{a}'"),
            };
        },
        ["Identity"] = f => { f.Only(); return Identity(); },
        ["Dropout"] = f => { f.Only("p", "inplace"); return Dropout(f.Double("p", 0.5), f.Bool("inplace", false)); },
        ["MaxPool2d"] = f =>
        {
            f.Only("kernel_size", "stride", "padding", "dilation", "ceil_mode");
            var k = Pair(f, "kernel_size", null)!.Value;
            return MaxPool2d(k, stride: Pair(f, "stride", null) ?? k, padding: Pair(f, "padding", 0),
                dilation: Pair(f, "dilation", 1), ceil_mode: f.Bool("ceil_mode", false));
        },
        ["Flatten"] = f => { f.Only("start_dim", "end_dim"); return Flatten(f.Long("start_dim", 1), f.Long("end_dim", -1)); },
        ["LSTM"] = f =>
        {
            f.Only([.. Rnn, "proj_size"]);
            if (f.Long("proj_size", 0) != 0) throw new Skip($"{f.Where}: TorchSharp's LSTM has no proj_size");
            return LSTM(f.Long("input_size"), f.Long("hidden_size"), f.Long("num_layers", 1), f.Bool("bias", true),
                f.Bool("batch_first", false), f.Double("dropout", 0.0), f.Bool("bidirectional", false));
        },
        ["GRU"] = f =>
        {
            f.Only(Rnn);
            return GRU(f.Long("input_size"), f.Long("hidden_size"), f.Long("num_layers", 1), f.Bool("bias", true),
                f.Bool("batch_first", false), f.Double("dropout", 0.0), f.Bool("bidirectional", false));
        },
        ["RNN"] = f =>
        {
            f.Only([.. Rnn, "nonlinearity"]);
            var nonlinearity = f.Str("nonlinearity", "tanh") switch
            {
                "tanh" => NonLinearities.Tanh,
                "relu" => NonLinearities.ReLU,
                var n => throw new ParseError($"{f.Where}: nonlinearity must be 'tanh' or 'relu', got '{n}'"),
            };
            return RNN(f.Long("input_size"), f.Long("hidden_size"), f.Long("num_layers", 1), nonlinearity, f.Bool("bias", true),
                f.Bool("batch_first", false), f.Double("dropout", 0.0), f.Bool("bidirectional", false));
        },
        ["MultiheadAttention"] = f =>
        {
            f.Only("embed_dim", "num_heads", "dropout", "bias", "add_bias_kv", "add_zero_attn", "kdim", "vdim", "batch_first");
            if (f.Bool("batch_first", false)) throw new Skip($"{f.Where}: TorchSharp's MultiheadAttention has no batch_first");
            return MultiheadAttention(f.Long("embed_dim"), f.Long("num_heads"), f.Double("dropout", 0.0), f.Bool("bias", true),
                f.Bool("add_bias_kv", false), f.Bool("add_zero_attn", false), f.LongOrNull("kdim"), f.LongOrNull("vdim"));
        },
        ["TransformerEncoderLayer"] = f =>
        {
            f.Only("d_model", "nhead", "dim_feedforward", "dropout", "activation", "layer_norm_eps", "batch_first", "norm_first");
            var activation = f.Str("activation", "relu") switch
            {
                "relu" => Activations.ReLU,
                "gelu" => Activations.GELU,
                var a => throw new ParseError($"{f.Where}: activation must be 'relu' or 'gelu', got '{a}'"),
            };
            // TorchSharp 0.107's TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation)
            // has no layer_norm_eps, batch_first or norm_first: PyTorch's defaults only.
            if (f.Double("layer_norm_eps", 1e-5) != 1e-5) throw new Skip($"{f.Where}: TorchSharp's TransformerEncoderLayer has no layer_norm_eps");
            if (f.Bool("batch_first", false)) throw new Skip($"{f.Where}: TorchSharp's TransformerEncoderLayer has no batch_first");
            if (f.Bool("norm_first", false)) throw new Skip($"{f.Where}: TorchSharp's TransformerEncoderLayer has no norm_first");
            return TransformerEncoderLayer(f.Long("d_model"), f.Long("nhead"), f.Long("dim_feedforward", 2048),
                f.Double("dropout", 0.1), activation);
        },
        ["EmbeddingBag"] = f =>
        {
            f.Only("num_embeddings", "embedding_dim", "max_norm", "norm_type", "scale_grad_by_freq", "mode", "sparse",
                "include_last_offset", "padding_idx");
            var mode = f.Str("mode", "mean") switch
            {
                "sum" => EmbeddingBagMode.Sum,
                "mean" => EmbeddingBagMode.Mean,
                "max" => EmbeddingBagMode.Max,
                var x => throw new ParseError($"{f.Where}: mode must be 'sum', 'mean' or 'max', got '{x}'"),
            };
            return EmbeddingBag(f.Long("num_embeddings"), f.Long("embedding_dim"),
                max_norm: f.Has("max_norm") ? f.Double("max_norm") : null, norm_type: f.Double("norm_type", 2.0),
                scale_grad_by_freq: f.Bool("scale_grad_by_freq", false), mode: mode, sparse: f.Bool("sparse", false),
                include_last_offset: f.Bool("include_last_offset", false), padding_index: f.Long("padding_idx", -1));
        },
    };

    /// <summary>A container's <c>children</c>: <c>[[name, spec], ...]</c>. With
    /// <paramref name="indexNames"/> (ModuleList) an entry may also be a bare spec, and a
    /// given name must be its index ("0", "1", ...), the only names a ModuleList has.</summary>
    static List<(string, nn.Module)> Children(Fields f, bool indexNames = false)
    {
        var children = new List<(string, nn.Module)>();
        foreach (var entry in f.Array("children").EnumerateArray())
        {
            var index = children.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (indexNames && entry.ValueKind == System.Text.Json.JsonValueKind.Object)
            {
                children.Add((index, BuildAny(new Fields(entry, $"{f.Where}/{index}"))));
                continue;
            }
            if (entry.ValueKind != System.Text.Json.JsonValueKind.Array || entry.GetArrayLength() != 2
                || entry[0].ValueKind != System.Text.Json.JsonValueKind.String
                || entry[1].ValueKind != System.Text.Json.JsonValueKind.Object)
                throw new ParseError($"{f.Where}.children: each child must be [name, spec]");
            var name = entry[0].GetString()!;
            if (indexNames && name != index)
                throw new ParseError($"{f.Where}.children: ModuleList child {index} must be named '{index}', got '{name}'");
            children.Add((name, BuildAny(new Fields(entry[1], $"{f.Where}/{name}"))));
        }
        return children;
    }

    static (long, long)? Pair(Fields f, string name, long? dflt)
    {
        if (!f.Has(name)) return dflt is long d ? (d, d) : (name == "kernel_size" ? throw new ParseError($"{f.Where}: missing field '{name}'") : null);
        var v = f.IntOrInts(name, 2);
        return (v[0], v[1]);
    }

    static (long, long, long)? Triple(Fields f, string name, long? dflt)
    {
        if (!f.Has(name)) return dflt is long d ? (d, d, d) : (name == "kernel_size" ? throw new ParseError($"{f.Where}: missing field '{name}'") : null);
        var v = f.IntOrInts(name, 3);
        return (v[0], v[1], v[2]);
    }

    /// <summary>The model: a module whose forward is Tensor -> Tensor (cases put LSTM, MHA,
    /// ModuleList, ... inside a container).</summary>
    public static M Build(Fields spec)
    {
        var m = BuildAny(spec);
        if (m is M model) return model;
        m.Dispose();
        throw new Skip($"a {spec.Str("type")} cannot be the whole model (its forward is not Tensor -> Tensor); put it in a Sequential");
    }

    public static nn.Module BuildAny(Fields spec)
    {
        var type = spec.Str("type");
        if (!Factories.TryGetValue(type, out var make))
            throw new Skip($"module type '{type}' is not supported by this worker (supported: {string.Join(", ", Factories.Keys)})");
        return make(spec);
    }
}
