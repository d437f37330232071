// The model zoo (cases/zoo/): a "TorchVision" module spec is built by TorchSharp's own
// TorchVision package (torchvision.models.<arch>), the way a user porting a torchvision model
// builds it; the PyTorch side builds the same name with torchvision (harness/cases/zoo.py). Compiled
// only when the build pins a TorchVision version (TORCHVISION, Worker.csproj); without one a
// zoo case is "unavailable" for this TorchSharp version.
using TorchSharp;
using static TorchSharp.torch;

namespace Worker;

public static class Zoo
{
    // weights_file / skipfc: TorchVision's documented loading path (the constructors' own
    // Module.load of a .dat file, skipping the last layer when skipfc); torchvision has neither.
    static readonly string[] Known = ["arch", "num_classes", "dropout", "transform_input", "aux_logits", "weights_file", "skipfc"];

    public static nn.Module Build(Fields f)
    {
        f.Only(Known);
#if TORCHVISION
        var arch = f.Str("arch");
        int classes = (int)f.Long("num_classes", 1000);
        bool transform = f.Bool("transform_input", false);
        bool Dflt(double p, double d) => Math.Abs(p - d) < 1e-12;
        string? wf = f.StrOrNull("weights_file");
        bool skipfc = f.Bool("skipfc", true);
        if (wf is not null && arch.StartsWith("mobilenet"))
            throw new Skip($"TorchVision's {arch} constructor takes no weights_file");
        float drop(double d) => (float)f.Double("dropout", d);
        // aux_logits has no TorchVision argument: its googlenet never builds aux heads, its
        // inception_v3 always does. The structure check shows what that means per case.
        return arch switch {
            "alexnet" => torchvision.models.alexnet(classes, drop(0.5), wf, skipfc),
            "googlenet" => torchvision.models.googlenet(classes, transform, wf, skipfc, dropout: drop(0.2)),
            "inception_v3" => torchvision.models.inception_v3(classes, drop(0.5), transform, wf, skipfc),
            "mobilenet_v2" => torchvision.models.mobilenet_v2(classes, dropout: f.Double("dropout", 0.2)),
            "mobilenet_v3_small" or "mobilenet_v3_large" when classes == 1000 && Dflt(f.Double("dropout", 0.2), 0.2) =>
                arch == "mobilenet_v3_small" ? torchvision.models.mobilenet_v3_small() : torchvision.models.mobilenet_v3_large(),
            "mobilenet_v3_small" or "mobilenet_v3_large" =>
                throw new Skip($"TorchVision's {arch}() takes no arguments: it builds num_classes=1000, dropout=0.2 only"),
            "resnet18" => torchvision.models.resnet18(classes, weights_file: wf, skipfc: skipfc),
            "resnet34" => torchvision.models.resnet34(classes, weights_file: wf, skipfc: skipfc),
            "resnet50" => torchvision.models.resnet50(classes, weights_file: wf, skipfc: skipfc),
            "resnet101" => torchvision.models.resnet101(classes, weights_file: wf, skipfc: skipfc),
            "resnet152" => torchvision.models.resnet152(classes, weights_file: wf, skipfc: skipfc),
            "resnext50_32x4d" => torchvision.models.resnext50_32x4d(classes, weights_file: wf, skipfc: skipfc),
            "resnext101_32x8d" => torchvision.models.resnext101_32x8d(classes, weights_file: wf, skipfc: skipfc),
            "resnext101_64x4d" => torchvision.models.resnext101_64x4d(classes, weights_file: wf, skipfc: skipfc),
            "wide_resnet50_2" => torchvision.models.wide_resnet50_2(classes, weights_file: wf, skipfc: skipfc),
            "wide_resnet101_2" => torchvision.models.wide_resnet101_2(classes, weights_file: wf, skipfc: skipfc),
            "vgg11" => torchvision.models.vgg11(classes, drop(0.5), wf, skipfc),
            "vgg11_bn" => torchvision.models.vgg11_bn(classes, drop(0.5), wf, skipfc),
            "vgg13" => torchvision.models.vgg13(classes, drop(0.5), wf, skipfc),
            "vgg13_bn" => torchvision.models.vgg13_bn(classes, drop(0.5), wf, skipfc),
            "vgg16" => torchvision.models.vgg16(classes, drop(0.5), wf, skipfc),
            "vgg16_bn" => torchvision.models.vgg16_bn(classes, drop(0.5), wf, skipfc),
            "vgg19" => torchvision.models.vgg19(classes, drop(0.5), wf, skipfc),
            "vgg19_bn" => torchvision.models.vgg19_bn(classes, drop(0.5), wf, skipfc),
            _ => throw new Skip($"TorchVision has no model '{arch}'"),
        };
#else
        throw new Skip("unavailable: this build has no TorchVision (no 'companions' pin for its TorchSharp version)");
#endif
    }
}
