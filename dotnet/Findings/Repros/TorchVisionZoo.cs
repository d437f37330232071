// Findings in TorchSharp's TorchVision package (the model zoo, harness/cases/zoo.py):
//
// torchvision-resnext101-depth: resnext101_32x8d and resnext101_64x4d build ResNet50's layer
//   counts [3, 4, 6, 3] (ResNet.cs calls Modules.ResNet.ResNet50), torchvision [3, 4, 23, 3].
// torchvision-mobilenet-classifier-first: MobileNetV2 / V3 declare `classifier` before
//   `features`, and RegisterComponents registers fields in declaration order, so
//   parameters() and state_dict() list the classifier first (torchvision: features first).
// torchvision-inception-aux-never-run: InceptionV3 builds AuxLogits but its forward never calls
//   it, so a train-mode forward leaves the aux head's BatchNorm statistics where they were
//   (torchvision runs AuxLogits in train mode and returns its output beside the logits).
using TorchSharp;
using static TorchSharp.torch;

namespace Findings;

public static class TorchVisionZoo
{
    public static int Resnext101Depth(string[] args)
    {
        var report = new Report();
#if TORCHVISION
        int Blocks(nn.Module m) => m.named_children().Count(c => c.name == "layer3") == 0 ? -1
            : ((nn.Module)m.named_children().First(c => c.name == "layer3").module).named_children().Count();
        using var a = torchvision.models.resnext101_32x8d();
        using var b = torchvision.models.resnext101_64x4d();
        using var r50 = torchvision.models.resnext50_32x4d();
        int na = Blocks(a), nb = Blocks(b), n50 = Blocks(r50);
        long pa = a.parameters().Sum(p => p.numel());
        report.Add($"resnext101_32x8d: layer3 has {na} blocks, {a.state_dict().Count} state entries, {pa} parameters");
        report.Add($"resnext101_64x4d: layer3 has {nb} blocks, {b.state_dict().Count} state entries");
        report.Add($"resnext50_32x4d: layer3 has {n50} blocks");
        report.Add("torchvision (resnet.py, resnext101_32x8d / _64x4d): _resnet(Bottleneck, [3, 4, 23, 3]): layer3 has 23 blocks");
        if (na == 23 && nb == 23)
            return report.Finish(Outcome.Fixed, "resnext101 models have 23 blocks in layer3");
        return report.Finish(Outcome.Reproduced,
            $"TorchVision's resnext101_32x8d / _64x4d have {na} / {nb} blocks in layer3 (torchvision: 23): ResNet50's depth");
#else
        return report.Finish(Outcome.NotApplicable, "this build has no TorchVision package");
#endif
    }

    public static int MobilenetClassifierFirst(string[] args)
    {
        var report = new Report();
#if TORCHVISION
        var firsts = new List<string>();
        foreach (var (name, model) in new (string, nn.Module)[] {
                     ("mobilenet_v2", torchvision.models.mobilenet_v2()),
                     ("mobilenet_v3_small", torchvision.models.mobilenet_v3_small()),
                     ("mobilenet_v3_large", torchvision.models.mobilenet_v3_large()) })
        {
            var first = model.named_parameters().First().name;
            var keys = model.state_dict().Keys.ToList();
            report.Add($"{name}: first parameter {first}; state_dict starts [{string.Join(", ", keys.Take(3))}, ...]");
            firsts.Add(first);
            model.Dispose();
        }
        report.Add("torchvision (mobilenetv2.py:142-145, mobilenetv3.py:188-190): features, then classifier: first parameter features.0.0.weight");
        if (firsts.All(f => f.StartsWith("features.")))
            return report.Finish(Outcome.Fixed, "the mobilenets list features first");
        return report.Finish(Outcome.Reproduced,
            "TorchVision's mobilenets list the classifier's parameters before the features' (torchvision: features first), "
            + "so parameters() indices and an optimizer's per-index state differ from PyTorch's");
#else
        return report.Finish(Outcome.NotApplicable, "this build has no TorchVision package");
#endif
    }

    public static int InceptionAuxNeverRun(string[] args)
    {
        var report = new Report();
#if TORCHVISION
        using var m = torchvision.models.inception_v3(num_classes: 10);
        double Stat(string name) => m.state_dict()[name].to(ScalarType.Float64).abs().sum().item<double>();
        long Tracked(string name) => m.state_dict()[name].item<long>();
        var auxMean0 = Stat("AuxLogits.conv0.bn.running_mean");
        m.train();
        using (var x = torch.randn(2, 3, 299, 299, generator: new Generator(0)))
        using (torch.no_grad()) {
            using var y = m.call(x);
            report.Add($"train-mode forward returned one tensor of shape [{string.Join(", ", y.shape)}]");
        }
        long main = Tracked("Mixed_7c.branch1x1.bn.num_batches_tracked");
        long aux0 = Tracked("AuxLogits.conv0.bn.num_batches_tracked"), aux1 = Tracked("AuxLogits.conv1.bn.num_batches_tracked");
        var auxMean1 = Stat("AuxLogits.conv0.bn.running_mean");
        report.Add($"after one train-mode forward: Mixed_7c.branch1x1.bn.num_batches_tracked = {main}, "
                   + $"AuxLogits.conv0.bn / conv1.bn num_batches_tracked = {aux0} / {aux1}");
        report.Add($"sum |AuxLogits.conv0.bn.running_mean| before {auxMean0:g}, after {auxMean1:g}");
        report.Add("torchvision (inception.py, Inception3._forward): if self.AuxLogits is not None and self.training: "
                   + "aux = self.AuxLogits(x); forward returns InceptionOutputs(x, aux) in train mode");
        if (main != 1)
            throw new InvalidOperationException($"the main branch's BatchNorm did not count the forward ({main})");
        if (aux0 == 1 && aux1 == 1)
            return report.Finish(Outcome.Fixed, "the train-mode forward runs AuxLogits");
        return report.Finish(Outcome.Reproduced,
            "TorchVision's inception_v3 builds AuxLogits but never runs it: a train-mode forward leaves its BatchNorm "
            + "statistics unchanged and returns no aux output (torchvision runs it and returns InceptionOutputs)");
#else
        return report.Finish(Outcome.NotApplicable, "this build has no TorchVision package");
#endif
    }
}
