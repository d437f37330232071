// Standalone repros of the conformance harness's findings against TorchSharp.
//
//   dotnet Findings.dll SLUG        run one repro (docs/findings/SLUG.md explains it)
//   dotnet Findings.dll --list      the slugs
//
// Each repro prints one verdict line, then its evidence:
//   REPRODUCED: ...        exit 0  (the defect is present in this TorchSharp/LibTorch build)
//   FIXED: ...             exit 3  (the repro's check now passes)
//   NOT-APPLICABLE: ...    exit 4  (this machine cannot show it, e.g. a CPU without AVX-512)
// Any other exit status (an unexpected exception: 2) is an error of the repro itself.
// Every repro file under Repros/ is self-contained, so it can be pasted into an upstream issue.
using System.Diagnostics;
using TorchSharp;

namespace Findings;

public enum Outcome { Reproduced = 0, Fixed = 3, NotApplicable = 4 }

public sealed class Report
{
    public List<string> Evidence { get; } = new();
    public void Add(string line) => Evidence.Add(line);

    public int Finish(Outcome outcome, string summary)
    {
        var word = outcome switch
        {
            Outcome.Reproduced => "REPRODUCED",
            Outcome.Fixed => "FIXED",
            _ => "NOT-APPLICABLE",
        };
        Console.WriteLine($"{word}: {summary}");
        foreach (var line in Evidence) Console.WriteLine($"  {line}");
        return (int)outcome;
    }
}

public static class Program
{
    // slug -> (one line, entry point). Hidden child entry points start with "child-".
    static readonly Dictionary<string, (string Title, Func<string[], int> Run)> Repros = new()
    {
        ["radam-lr-applied-twice"] = ("RAdam's rectified branch multiplies the update by lr twice", RAdamLrAppliedTwice.Run),
        ["adadelta-step-never-incremented"] = ("Adadelta never increments its state step", AdadeltaStepNeverIncremented.Run),
        ["groupnorm-uninitialised-affine"] = ("GroupNorm's weight and bias start uninitialised", GroupNormUninitialisedAffine.Run),
        ["moduledict-to-throws"] = ("a module holding a ModuleDict cannot .to(dtype)", ModuleDictToThrows.Run),
        ["sequential-own-buffer-dropped"] = ("a buffer registered on nn.Sequential itself is not in its state_dict", SequentialOwnBufferDropped.Run),
        ["sequential-tied-weight-listed-once"] = ("nn.Sequential's state_dict lists a tied Parameter once", SequentialTiedWeightListedOnce.Run),
        ["jit-load-aborts-on-errorreport"] = ("torch.jit.load aborts the process on a TorchScript ErrorReport", JitLoadAbortsOnErrorReport.Run),
        ["tensor-load-int-max-elements"] = ("static Tensor.Load refuses more than int.MaxValue elements", TensorLoadIntMaxElements.Run),
        ["module-save-load-non-contiguous"] = ("Module.save/load throw on a non-contiguous state tensor", ModuleSaveLoadNonContiguous.Run),
        ["bf16-avx512-conv"] = ("bfloat16 convolution is wrong on AVX-512 CPUs (oneDNN)", Bf16Avx512Conv.Run),
        ["f32-avx512-conv"] = ("float32 3x3 convolution is wrong on this AVX-512 CPU for 17-31, 33-47, ... channels, batch >= 2 (oneDNN)", F32Avx512Conv.Run),
#if PYBRIDGE
        ["pybridge-save-keeps-old-tail"] = ("PyBridge's PickleStateDict/Safetensors.SaveStateDict keep an older file's tail", PyBridgeSaveKeepsOldTail.Run),
        ["pybridge-legacy-format-refused"] = ("PyBridge refuses torch.save's legacy (non-zip) format", PyBridgeLegacyFormatRefused.Run),
        ["pybridge-load-py-ignores-layout"] = ("PyBridge's load_py writes through the file's shape/offset, reading the storage from its start", PyBridgeLoadPyIgnoresLayout.Run),
        ["pybridge-save-py-view-offset"] = ("PyBridge's save_py writes a view with a storage offset that torch.load cannot rebuild", PyBridgeSavePyViewOffset.Run),
        ["pybridge-safetensors-offsets-unchecked"] = ("PyBridge's safetensors reader accepts overlapping data_offsets and trailing bytes", PyBridgeSafetensorsOffsetsUnchecked.Run),
        ["pybridge-checkpoint-mutates-skip"] = ("PyBridge's load_checkpoint adds keys to the caller's skip list (throws on an array)", PyBridgeCheckpointMutatesSkip.Run),
#endif
        ["torchvision-resnext101-depth"] = ("TorchVision's resnext101 models have ResNet50's depth", TorchVisionZoo.Resnext101Depth),
        ["torchvision-mobilenet-classifier-first"] = ("TorchVision's mobilenets list the classifier's parameters first", TorchVisionZoo.MobilenetClassifierFirst),
        ["torchvision-inception-aux-never-run"] = ("TorchVision's inception_v3 builds AuxLogits but never runs it", TorchVisionZoo.InceptionAuxNeverRun),
        ["child-jit-load"] = ("(child process of jit-load-aborts-on-errorreport)", JitLoadAbortsOnErrorReport.Child),
        ["child-bf16-conv"] = ("(child process of bf16-avx512-conv)", Bf16Avx512Conv.Child),
        ["child-f32-conv"] = ("(child process of f32-avx512-conv)", F32Avx512Conv.Child),
        // onednn-conv-backward-sigfpe (own lines: merges stay clean)
        ["onednn-conv-backward-sigfpe"] = ("a strided 1x1 convolution's backward dies of SIGFPE (oneDNN, AMD CPU with an all-zero cache leaf)", OneDnnConvBackwardSigfpe.Run),
        ["child-conv-backward-sigfpe"] = ("(child process of onednn-conv-backward-sigfpe)", OneDnnConvBackwardSigfpe.Child),
    };

    public static int Main(string[] args)
    {
        if (args.Length == 0 || args[0] is "--list" or "-h" or "--help")
        {
            foreach (var (slug, (title, _)) in Repros)
                if (!slug.StartsWith("child-")) Console.WriteLine($"{slug,-38} {title}");
            return args.Length == 0 ? 2 : 0;
        }
        if (!Repros.TryGetValue(args[0], out var repro))
        {
            Console.Error.WriteLine($"unknown finding '{args[0]}' (--list shows them)");
            return 2;
        }
        if (!args[0].StartsWith("child-"))
            Console.WriteLine($"# {args[0]}: TorchSharp {typeof(torch).Assembly.GetName().Version}, LibTorch {torch.__version__}, "
                              + $"{System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription}");
        try
        {
            return repro.Run(args[1..]);
        }
        catch (Exception exc)
        {
            Console.Error.WriteLine($"ERROR: the repro itself failed: {exc}");
            return 2;
        }
    }

    /// <summary>Run this program again as a child process (same dotnet host, same dll) with
    /// extra environment settings; returns its exit code and both output streams.</summary>
    public static (int ExitCode, string Stdout, string Stderr) RunChild(string[] args, IDictionary<string, string?> env, int timeoutSeconds = 120)
    {
        var self = Environment.ProcessPath ?? "dotnet";
        var psi = new ProcessStartInfo(self) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        // Started as `dotnet Findings.dll ...`: ProcessPath is the dotnet host, so pass the dll too.
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") psi.ArgumentList.Add(typeof(Program).Assembly.Location);
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env)
        {
            if (v is null) psi.Environment.Remove(k);
            else psi.Environment[k] = v;
        }
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {self}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeoutSeconds * 1000))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"child {string.Join(' ', psi.ArgumentList)} ran past {timeoutSeconds} s");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}
