// jit-load-aborts-on-errorreport: torch.jit.load aborts the whole process on a TorchScript ErrorReport.
//
// data/jit_nonascii_submodule.pt is a TorchScript file in which PyTorch 1.13 wrote a
// submodule named 'blöck-1' (see data/make_jit_nonascii.py). Loading it makes LibTorch's
// TorchScript frontend throw torch::jit::ErrorReport, which derives from std::exception but
// neither from c10::Error nor std::runtime_error: the CATCH macro around THSJIT_load
// (src/Native/LibTorchSharp/Utils.h) lets it escape the extern "C" function, and the process
// terminates (SIGABRT) instead of the caller getting an exception. PyTorch's own
// torch.jit.load raises a catchable RuntimeError on the same file. The repro therefore loads
// the file in a child process and looks at how the child ended.
using TorchSharp;
using static TorchSharp.torch;

namespace Findings;

public static class JitLoadAbortsOnErrorReport
{
    public static int Child(string[] args)
    {
        try
        {
            using var m = jit.load(args[0]);
            Console.WriteLine("CHILD: torch.jit.load returned a module");
        }
        catch (Exception exc)
        {
            Console.WriteLine($"CHILD: torch.jit.load threw {exc.GetType().FullName}: {exc.Message.Split('\n')[0]}");
        }
        return 0;
    }

    public static int Run(string[] args)
    {
        var report = new Report();
        var file = args.Length > 0 ? args[0] : Path.Combine(AppContext.BaseDirectory, "data", "jit_nonascii_submodule.pt");
        if (!File.Exists(file)) throw new FileNotFoundException($"the TorchScript file of this repro is missing: {file}");
        report.Add($"child process: torch.jit.load(\"{file}\")");
        var (code, stdout, stderr) = Program.RunChild(new[] { "child-jit-load", file },
            new Dictionary<string, string?> { ["DOTNET_DbgEnableMiniDump"] = "0" });
        string[] Lines(string s) => s.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        report.Add($"child exit status: {code}{(code == 134 ? " (128 + SIGABRT)" : "")}");
        foreach (var ln in Lines(stdout).Take(5)) report.Add($"child stdout: {ln.TrimEnd()}");
        foreach (var ln in Lines(stderr).Where(l => !string.IsNullOrWhiteSpace(l)).Take(6)) report.Add($"child stderr: {ln.TrimEnd()}");

        bool aborted = code == 134 || stderr.Contains("terminate called");
        if (aborted)
        {
            var what = stderr.Contains("torch::jit::ErrorReport") ? " (uncaught torch::jit::ErrorReport)" : "";
            return report.Finish(Outcome.Reproduced, $"torch.jit.load aborted the process{what} instead of throwing");
        }
        if (code == 0 && stdout.Contains("CHILD: torch.jit.load threw"))
            return report.Finish(Outcome.Fixed, "torch.jit.load throws a .NET exception on this file; the process survives");
        throw new InvalidOperationException("the child ended in an unexpected way:\n" + string.Join("\n", report.Evidence));
    }
}
