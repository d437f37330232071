// The pythonnet host: a .NET process that embeds CPython through pythonnet and runs one
// Python script or module inside it, with TorchSharp loadable through `clr`.
//
//   dotnet PyHost.dll SCRIPT.py [args...]        runs SCRIPT.py as __main__
//   dotnet PyHost.dll -m MODULE [args...]        runs MODULE as __main__ (like python -m)
//
// The Python side of the start-up (the guard that refuses PyTorch, sys.argv, running the
// script, turning SystemExit into the exit status) lives in pyhost_boot.py beside this
// assembly. The CPython library is Debian's libpython3.11 unless PYTHONNET_PYDLL names
// another one. The exit status is the script's (SystemExit code; 1 for an uncaught error).
using Python.Runtime;

namespace PyHost;

public static class Program
{
    [System.Runtime.InteropServices.DllImport("libc")] static extern void _exit(int status);

    const string DefaultPythonLibrary = "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0";

    public static int Main(string[] args)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help")
        {
            Console.Error.WriteLine("usage: PyHost SCRIPT.py [args...] | PyHost -m MODULE [args...]");
            return 2;
        }
        var library = Environment.GetEnvironmentVariable("PYTHONNET_PYDLL") is { Length: > 0 } lib ? lib : DefaultPythonLibrary;
        if (!File.Exists(library))
        {
            Console.Error.WriteLine($"pyhost: the CPython library {library} is missing (Debian package libpython3.11; "
                                    + "scripts/setup.sh installs it, or set PYTHONNET_PYDLL)");
            return 3;
        }
        Runtime.PythonDLL = library;
        PythonEngine.Initialize();
        int status;
        using (Py.GIL())
        {
            using var sys = Py.Import("sys");
            using var path = sys.GetAttr("path");
            path.InvokeMethod("insert", new PyInt(0), new PyString(AppContext.BaseDirectory));
            using var boot = Py.Import("pyhost_boot");
            using var argv = new PyList(args.Select(a => (PyObject)new PyString(a)).ToArray());
            using var result = boot.InvokeMethod("main", argv);
            status = result.As<int>();
        }
        Console.Out.Flush();
        Console.Error.Flush();
        // No PythonEngine.Shutdown() and no Environment.Exit: on .NET 9+ Shutdown needs
        // BinaryFormatter (gone), and pythonnet's process-exit handlers can wait forever on the
        // interpreter. pyhost_boot.main flushed Python's streams; end the process at once.
        _exit(status);
        return status;
    }
}
