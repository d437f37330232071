// Prints every P/Invoke import of an assembly as "module<TAB>entry point", one a line,
// read from the metadata's ImplMap rows (what the runtime binds), so [DllImport] with or
// without EntryPoint and source-generated [LibraryImport] stubs all show under their real
// native name. Exit 2 for bad usage or a file that is not a .NET assembly.
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

if (args.Length != 1)
{
    Console.Error.WriteLine("usage: PInvokeNames ASSEMBLY.dll");
    return 2;
}
try
{
    using var stream = File.OpenRead(args[0]);
    using var pe = new PEReader(stream);
    if (!pe.HasMetadata)
    {
        Console.Error.WriteLine($"{args[0]}: no .NET metadata (not a managed assembly)");
        return 2;
    }
    var md = pe.GetMetadataReader();
    var output = new System.Text.StringBuilder();
    foreach (var handle in md.MethodDefinitions)
    {
        var method = md.GetMethodDefinition(handle);
        var import = method.GetImport();
        if (import.Module.IsNil)
            continue;
        var module = md.GetString(md.GetModuleReference(import.Module).Name);
        var name = import.Name.IsNil ? md.GetString(method.Name) : md.GetString(import.Name);
        output.Append(module).Append('\t').Append(name).Append('\n');
    }
    Console.Out.Write(output.ToString());
    return 0;
}
catch (Exception e) when (e is BadImageFormatException or IOException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"{args[0]}: {e.GetType().Name}: {e.Message}");
    return 2;
}
