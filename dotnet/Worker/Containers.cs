// Containers for module specs whose children are not all Module<Tensor, Tensor> (LSTM, GRU,
// RNN, MultiheadAttention, EmbeddingBag, ModuleList, ModuleDict), and the forward rule the
// harness uses for every container (docs/protocol.md "Case specs"):
//   children run in registration order; a child returning a tuple passes on its first
//   element; MultiheadAttention runs as self-attention (x, x, x).
// Children are registered with register_module(name, child) under their own names, so a
// container adds exactly one key level, like PyTorch's nn.Sequential / nn.Module fields.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using M = TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor>;

namespace Worker;

/// <summary>A Sequential-like module (spec types "Sequential" with non-Tensor->Tensor
/// children, and "Module": a custom module whose fields are the named children).</summary>
public sealed class SpecContainer : M
{
    readonly List<nn.Module> order = [];

    public SpecContainer(string name, IEnumerable<(string, nn.Module)> children) : base(name)
    {
        foreach (var (childName, child) in children)
        {
            register_module(childName, child);
            order.Add(child);
        }
    }

    public override Tensor forward(Tensor x)
    {
        foreach (var child in order) x = SpecForward.Apply(child, x);
        return x;
    }
}

/// <summary>The harness's forward rule for one child, by its TorchSharp type.</summary>
public static class SpecForward
{
    public static Tensor Apply(nn.Module m, Tensor x) => m switch
    {
        M plain => plain.call(x),
        LSTM lstm => lstm.call(x, null).Item1,
        GRU gru => gru.call(x, null).Item1,
        RNN rnn => rnn.call(x, null).Item1,
        MultiheadAttention mha => mha.call(x, x, x, null, false, null).Item1,
        EmbeddingBag bag => bag.call(x),
        ModuleList<nn.Module> list => list.Aggregate(x, (t, child) => Apply(child, t)),
        ModuleDict<nn.Module> dict => dict.values().Aggregate(x, (t, child) => Apply(child, t)),
        _ => throw new NotSupportedException($"no forward rule for module type {m.GetType().Name}"),
    };
}

/// <summary>Training / forward inputs from a case's <c>input_shape</c> and optional
/// <c>input</c> spec (<c>{"dtype": "int64", "low": 0, "high": N}</c> for Embedding models).</summary>
public static class SpecInput
{
    /// <summary>Without a spec (or a floating dtype in it): randn(shape, float32) converted to
    /// the model's dtype. With an integer dtype: randint(low, high, shape) of that dtype.</summary>
    public static Tensor Make(long[] shape, Generator gen, ScalarType modelDtype, Device device, Fields? spec)
    {
        if (spec is not null)
        {
            spec.Only("dtype", "low", "high");
            var dtype = Enc.Dtype(spec.Str("dtype", "float32"));
            if (!is_floating_point(empty(0, dtype)))
                return randint(spec.Long("low", 0), spec.Long("high"), shape, dtype, generator: gen).to(device);
            return randn(shape, ScalarType.Float32, generator: gen).to(dtype).to(device);
        }
        return randn(shape, ScalarType.Float32, generator: gen).to(modelDtype).to(device);
    }
}
