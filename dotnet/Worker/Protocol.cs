// Request field access, response statuses and value encodings of docs/protocol.md.
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace Worker;

/// <summary>The request is not what the protocol says: answered with status "parse_error".</summary>
public sealed class ParseError(string message) : Exception(message);

/// <summary>The worker declines by design: answered with status "skipped".</summary>
public sealed class Skip(string reason) : Exception(reason);

/// <summary>Typed access to the fields of a JSON object (a request, or a spec inside it).
/// Every missing or mistyped field raises <see cref="ParseError"/> naming the field.</summary>
public sealed class Fields(JsonElement obj, string where)
{
    public JsonElement Element => obj;
    public string Where => where;

    public bool Has(string name) =>
        obj.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null;

    public IEnumerable<string> Names => obj.EnumerateObject().Select(p => p.Name);

    JsonElement Get(string name)
    {
        if (!obj.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
            throw new ParseError($"{where}: missing field '{name}'");
        return v;
    }

    ParseError Bad(string name, string want, JsonElement v) =>
        new($"{where}: field '{name}' must be {want}, got {v.ValueKind} {Short(v)}");

    static string Short(JsonElement v)
    {
        var s = v.GetRawText();
        return s.Length > 60 ? s[..60] + "..." : s;
    }

    public string Str(string name)
    {
        var v = Get(name);
        return v.ValueKind == JsonValueKind.String ? v.GetString()! : throw Bad(name, "a string", v);
    }

    public string Str(string name, string dflt) => Has(name) ? Str(name) : dflt;

    public string? StrOrNull(string name) => Has(name) && Get(name).ValueKind != JsonValueKind.Null ? Str(name) : null;

    public long Long(string name)
    {
        var v = Get(name);
        return v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var x) ? x : throw Bad(name, "an integer", v);
    }

    public long Long(string name, long dflt) => Has(name) ? Long(name) : dflt;

    public long? LongOrNull(string name) => Has(name) ? Long(name) : null;

    public double Double(string name)
    {
        var v = Get(name);
        return v.ValueKind == JsonValueKind.Number ? v.GetDouble() : throw Bad(name, "a number", v);
    }

    public double Double(string name, double dflt) => Has(name) ? Double(name) : dflt;

    public bool Bool(string name)
    {
        var v = Get(name);
        return v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw Bad(name, "true or false", v);
    }

    public bool Bool(string name, bool dflt) => Has(name) ? Bool(name) : dflt;

    public Fields Obj(string name, string? label = null)
    {
        var v = Get(name);
        return v.ValueKind == JsonValueKind.Object ? new Fields(v, label ?? $"{where}.{name}") : throw Bad(name, "an object", v);
    }

    public Fields? ObjOrNull(string name) => Has(name) ? Obj(name) : null;

    public JsonElement Array(string name)
    {
        var v = Get(name);
        return v.ValueKind == JsonValueKind.Array ? v : throw Bad(name, "an array", v);
    }

    public long[] Longs(string name)
    {
        var v = Array(name);
        return v.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out var x)
            ? x : throw Bad(name, "an array of integers", v)).ToArray();
    }

    /// <summary>An integer or a list of integers (PyTorch's int-or-tuple arguments).</summary>
    public long[] IntOrInts(string name, int rank)
    {
        var v = Get(name);
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var x)) return Enumerable.Repeat(x, rank).ToArray();
        var xs = Longs(name);
        return xs.Length == rank ? xs : throw Bad(name, $"an integer or a list of {rank} integers", v);
    }

    public string[] Strs(string name)
    {
        var v = Array(name);
        return v.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String
            ? e.GetString()! : throw Bad(name, "an array of strings", v)).ToArray();
    }

    public string[] Strs(string name, string[] dflt) => Has(name) ? Strs(name) : dflt;

    /// <summary>Refuse arguments outside <paramref name="known"/> (a case naming an argument
    /// the worker would silently ignore is a bug of the case or the harness).</summary>
    public void Only(params string[] known)
    {
        var unknown = Names.Where(n => n != "type" && !known.Contains(n)).ToList();
        if (unknown.Count > 0)
            throw new ParseError($"{where}: unknown argument(s) [{string.Join(", ", unknown)}] (known: [{string.Join(", ", known)}])");
    }
}

/// <summary>Value encodings: dtype names, f64 as IEEE bits, tensor digests.</summary>
public static class Enc
{
    public static readonly Dictionary<ScalarType, string> DtypeNames = new()
    {
        [ScalarType.Byte] = "uint8", [ScalarType.Int8] = "int8", [ScalarType.Int16] = "int16",
        [ScalarType.Int32] = "int32", [ScalarType.Int64] = "int64", [ScalarType.Float16] = "float16",
        [ScalarType.Float32] = "float32", [ScalarType.Float64] = "float64",
        [ScalarType.ComplexFloat32] = "complex64", [ScalarType.ComplexFloat64] = "complex128",
        [ScalarType.Bool] = "bool", [ScalarType.BFloat16] = "bfloat16",
        [(ScalarType)12] = "qint8", [(ScalarType)13] = "quint8", [(ScalarType)14] = "qint32",
    };

    public static readonly Dictionary<string, ScalarType> Dtypes =
        DtypeNames.ToDictionary(kv => kv.Value, kv => kv.Key);

    public static string DtypeName(ScalarType t) =>
        DtypeNames.TryGetValue(t, out var n) ? n : $"code{(int)t}";

    public static ScalarType Dtype(string name) =>
        Dtypes.TryGetValue(name, out var t) ? t
            : throw new ParseError($"unknown dtype '{name}' (known: {string.Join(" ", Dtypes.Keys)})");

    /// <summary>16 lower-case hex digits of the IEEE-754 bits.</summary>
    public static string F64(double v) =>
        BitConverter.DoubleToInt64Bits(v).ToString("x16", CultureInfo.InvariantCulture);

    public static bool IsQuantized(ScalarType t) => (int)t is 12 or 13 or 14;

    [System.Runtime.InteropServices.DllImport("LibTorchSharp")]
    static extern IntPtr THSTensor_data(IntPtr handle);

    const int HashChunk = 16 << 20;

    /// <summary>SHA-256 of the C-order little-endian element bytes (quantized: the integer
    /// representation), streamed from the tensor's memory in 16 MiB chunks: no managed copy
    /// of the whole tensor, so tensors of more than 2 GiB (beyond any .NET array) hash too.</summary>
    public static string Sha256(Tensor t)
    {
        using var scope = NewDisposeScope();
        var x = t.detach().cpu();
        if (IsQuantized(x.dtype)) x = x.int_repr();
        x = x.contiguous();
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("big-endian host");
        long total = x.numel() * x.ElementSize;
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        if (total > 0)
        {
            IntPtr data = THSTensor_data(x.Handle);
            if (data == IntPtr.Zero) throw new InvalidOperationException("tensor has no data pointer");
            var buffer = new byte[(int)Math.Min(total, HashChunk)];
            for (long at = 0; at < total; at += buffer.Length)
            {
                int n = (int)Math.Min(buffer.Length, total - at);
                System.Runtime.InteropServices.Marshal.Copy(data + (nint)at, buffer, 0, n);
                hash.AppendData(buffer, 0, n);
            }
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    public static JsonObject Digest(Tensor t) => new()
    {
        ["dtype"] = DtypeName(t.dtype),
        ["shape"] = new JsonArray(t.shape.Select(d => (JsonNode?)JsonValue.Create(d)).ToArray()),
        ["sha256"] = Sha256(t),
    };

    /// <summary>The digests of a state dict in its order: [{name, dtype, shape, sha256}, ...]
    /// (the module state of 'digest' and 'jit_run').</summary>
    public static JsonArray NamedDigests(IEnumerable<KeyValuePair<string, Tensor>> state)
    {
        var digests = new JsonArray();
        foreach (var (name, t) in state)
        {
            var entry = new JsonObject { ["name"] = name };
            foreach (var (field, value) in Digest(t)) entry[field] = value?.DeepClone();
            digests.Add(entry);
        }
        return digests;
    }
}
