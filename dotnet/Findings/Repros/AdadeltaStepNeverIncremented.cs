// adadelta-step-never-incremented: TorchSharp's Adadelta never increments state.step.
//
// Three optimizer steps on one parameter; then the step counter each optimizer's state holds
// (optimizer.state_dict().State[0]). PyTorch's Adadelta (torch/optim/adadelta.py) counts
// steps like every other optimizer; TorchSharp's Adam is shown as the control.
using TorchSharp;
using static TorchSharp.torch;

namespace Findings;

public static class AdadeltaStepNeverIncremented
{
    public static int Run(string[] args)
    {
        const int steps = 3;
        var report = new Report();

        var p = new TorchSharp.Modules.Parameter(tensor(new[] { 1.0f, -2.0f }));
        var adadelta = optim.Adadelta(new[] { p });
        var q = new TorchSharp.Modules.Parameter(tensor(new[] { 1.0f, -2.0f }));
        var adam = optim.Adam(new[] { q });
        for (int i = 0; i < steps; i++)
        {
            p.grad = tensor(new[] { 0.5f, 0.25f });
            adadelta.step();
            q.grad = tensor(new[] { 0.5f, 0.25f });
            adam.step();
        }
        var adadeltaStep = ((TorchSharp.Modules.Adadelta.State)adadelta.state_dict().State[0]).step;
        var adamStep = ((TorchSharp.Modules.Adam.State)adam.state_dict().State[0]).step;
        var moved = p.data<float>().ToArray();
        report.Add($"after {steps} steps: Adadelta state.step = {adadeltaStep} (parameter moved to [{string.Join(", ", moved)}])");
        report.Add($"control: Adam state.step = {adamStep}");
        report.Add("PyTorch: Adadelta's state['step'] is " + steps + " after " + steps + " steps");

        if (adadeltaStep == steps)
            return report.Finish(Outcome.Fixed, $"Adadelta's state.step is {steps} after {steps} steps");
        if (adadeltaStep == 0 && adamStep == steps)
            return report.Finish(Outcome.Reproduced, $"Adadelta's state.step stays 0 after {steps} steps (Adam's is {adamStep})");
        throw new InvalidOperationException($"unexpected: Adadelta step {adadeltaStep}, Adam step {adamStep}");
    }
}
