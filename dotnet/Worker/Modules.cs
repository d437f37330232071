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
    static readonly string[] Norm = ["num_features", "eps", "momentum", "affine", "track_running_stats"];

    public static readonly Dictionary<string, Func<Fields, M>> Factories = new()
    {
        ["Sequential"] = f =>
        {
            f.Only("children");
            var children = new List<(string, M)>();
            foreach (var entry in f.Array("children").EnumerateArray())
            {
                if (entry.ValueKind != System.Text.Json.JsonValueKind.Array || entry.GetArrayLength() != 2
                    || entry[0].ValueKind != System.Text.Json.JsonValueKind.String
                    || entry[1].ValueKind != System.Text.Json.JsonValueKind.Object)
                    throw new ParseError($"{f.Where}.children: each child must be [name, spec]");
                var name = entry[0].GetString()!;
                children.Add((name, Build(new Fields(entry[1], $"{f.Where}/{name}"))));
            }
            return Sequential(children);
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
    };

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

    public static M Build(Fields spec)
    {
        var type = spec.Str("type");
        if (!Factories.TryGetValue(type, out var make))
            throw new Skip($"module type '{type}' is not supported by this worker (supported: {string.Join(", ", Factories.Keys)})");
        return make(spec);
    }
}
