// ```
//  harness (Python)                                   worker (C#, one TorchSharp version)
//  ----------------                                   -----------------------------------
//   spawn  dotnet Worker.dll  ───────────────────────▶ starts, prints nothing until asked
//   {"id":1,"op":"hello"}\n            ── stdin ──▶
//                                      ◀─ stdout ──  {"id":1,"status":"ok","result":{...}}\n
//   {"id":2,"op":"build",...}\n        ── stdin ──▶
//                                      ◀─ stdout ──  {"id":2,"status":"runtime_error","error":{...}}\n
//   ...                                               (stderr: free-form log, never parsed)
//   {"id":N,"op":"shutdown"}\n         ── stdin ──▶   exits 0
//   no reply within the deadline  ⇒  harness kills the process: outcome "timeout", restart
//   EOF / dead pipe              ⇒  outcome "crash" (exit code + stderr tail), restart
// ```
//
// The .NET worker of the PyTorch <-> TorchSharp conformance harness (docs/protocol.md, version 1).
//
// One request per line, one response per line, strictly in order. Every request is answered,
// whatever happens inside it: ok / parse_error / runtime_error / skipped. Only the protocol
// writes to the real stdout: at start-up file descriptor 1 is duplicated for the protocol and
// then pointed at stderr, so nothing libtorch or TorchSharp prints can corrupt the stream.
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Win32.SafeHandles;

namespace Worker;

public static class Program
{
    const int ProtocolVersion = 1;
    static readonly JsonSerializerOptions Compact = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, WriteIndented = false };

    [DllImport("libc", SetLastError = true)] static extern int dup(int fd);
    [DllImport("libc", SetLastError = true)] static extern int dup2(int oldfd, int newfd);

    /// <summary>The protocol's own copy of stdout; fd 1 itself then goes to stderr.</summary>
    static Stream ProtocolStdout()
    {
        if (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS())
        {
            try
            {
                int fd = dup(1);
                if (fd >= 0 && dup2(2, 1) >= 0)
                    return new FileStream(new SafeFileHandle(fd, ownsHandle: true), FileAccess.Write, 1);
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                Console.Error.WriteLine($"worker: cannot separate stdout ({e.Message}); continuing with plain stdout");
            }
        }
        return Console.OpenStandardOutput();
    }

    public static int Main()
    {
        var output = new StreamWriter(ProtocolStdout(), new UTF8Encoding(false)) { AutoFlush = false, NewLine = "\n" };
        Console.SetOut(Console.Error);   // managed Console.WriteLine goes to the log as well
        var input = new StreamReader(Console.OpenStandardInput(), new UTF8Encoding(false), false);
        var session = new Session();
        string? line;
        while ((line = input.ReadLine()) is not null)
        {
            var (response, exit) = Handle(session, line);
            output.Write(response.ToJsonString(Compact));
            output.Write('\n');
            output.Flush();
            if (exit) break;
        }
        Console.Error.Flush();
        return 0;
    }

    /// <summary>One request line -> one response object; never throws.</summary>
    static (JsonObject, bool exit) Handle(Session session, string line)
    {
        JsonNode? id = null;
        string op = "?";
        try
        {
            JsonDocument doc;
            try { doc = JsonDocument.Parse(line); }
            catch (JsonException e) { throw new ParseError($"not valid JSON: {e.Message}"); }
            using (doc)
            {
                var root = doc.RootElement;
                if (root.ValueKind != JsonValueKind.Object) throw new ParseError($"a request must be a JSON object, got {root.ValueKind}");
                if (root.TryGetProperty("id", out var idEl)) id = JsonNode.Parse(idEl.GetRawText());
                var req = new Fields(root, "request");
                op = req.Str("op");
                Console.Error.WriteLine($"worker: {op} (id {id?.ToJsonString() ?? "null"})");
                var result = session.Dispatch(op, new Fields(root, op));
                return (new JsonObject { ["id"] = id, ["status"] = "ok", ["result"] = result }, op == "shutdown");
            }
        }
        catch (Exception e0)
        {
            var e = Unwrap(e0);
            switch (e)
            {
                case ParseError p:
                    Console.Error.WriteLine($"worker: {op}: parse_error: {p.Message}");
                    return (new JsonObject { ["id"] = id, ["status"] = "parse_error", ["error"] = Error(p) }, false);
                case Skip s:
                    Console.Error.WriteLine($"worker: {op}: skipped: {s.Message}");
                    return (new JsonObject { ["id"] = id, ["status"] = "skipped", ["reason"] = s.Message }, false);
                default:
                    Console.Error.WriteLine($"worker: {op}: runtime_error: {e}");
                    return (new JsonObject { ["id"] = id, ["status"] = "runtime_error", ["error"] = Error(e) }, false);
            }
        }
    }

    static Exception Unwrap(Exception e) =>
        e is TargetInvocationException or TypeInitializationException && e.InnerException is not null ? Unwrap(e.InnerException!) : e;

    static JsonObject Error(Exception e)
    {
        var stack = new StringBuilder(e.StackTrace ?? "");
        for (var inner = e.InnerException; inner is not null; inner = inner.InnerException)
            stack.Append($"\n--- inner {inner.GetType().FullName}: {inner.Message}\n{inner.StackTrace}");
        return new JsonObject { ["type"] = e.GetType().FullName, ["message"] = e.Message, ["stack"] = stack.ToString() };
    }

    public static int Protocol => ProtocolVersion;
}
