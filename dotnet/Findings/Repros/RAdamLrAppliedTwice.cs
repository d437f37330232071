// radam-lr-applied-twice: TorchSharp's RAdam multiplies the rectified update by lr twice.
//
// One float64 parameter vector, fixed gradients, betas (0.9, 0.999), lr 0.01. The reference
// is PyTorch's RAdam algorithm (torch/optim/radam.py, the paper's Algorithm 2) written out in
// plain doubles next to the TorchSharp optimizer. While rho_t <= 5 (steps 1..5 for beta2 =
// 0.999) both take the un-rectified step `lr * m_hat`; from the first step with rho_t > 5
// (step 6) TorchSharp's update is the reference's times lr.
using TorchSharp;
using static TorchSharp.torch;

namespace Findings;

public static class RAdamLrAppliedTwice
{
    public static int Run(string[] args)
    {
        const double lr = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
        const int steps = 8;
        var report = new Report();
        double[] start = { 1.0, -0.5, 0.25 };
        var param = new TorchSharp.Modules.Parameter(tensor(start, ScalarType.Float64));
        var opt = optim.RAdam(new[] { param }, lr: lr, beta1: beta1, beta2: beta2, eps: eps);

        var m = new double[start.Length];
        var v = new double[start.Length];
        double rhoInf = 2 / (1 - beta2) - 1;
        int firstRectified = 0, firstDiverged = 0;
        bool agreeBefore = true, ratioIsLr = false;

        for (int t = 1; t <= steps; t++)
        {
            double[] g = start.Select((_, i) => (0.3 - 0.2 * i) * (1 + 0.1 * t)).ToArray();
            var before = param.data<double>().ToArray();
            param.grad = tensor(g, ScalarType.Float64);
            opt.step();
            var after = param.data<double>().ToArray();

            // PyTorch's RAdam step, element by element
            double bc1 = 1 - Math.Pow(beta1, t), bc2 = 1 - Math.Pow(beta2, t);
            double rhoT = rhoInf - 2 * t * Math.Pow(beta2, t) / bc2;
            var refUpdate = new double[start.Length];
            for (int i = 0; i < start.Length; i++)
            {
                m[i] = beta1 * m[i] + (1 - beta1) * g[i];
                v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
                double mHat = m[i] / bc1;
                if (rhoT > 5)
                {
                    double rect = Math.Sqrt((rhoT - 4) * (rhoT - 2) * rhoInf / ((rhoInf - 4) * (rhoInf - 2) * rhoT));
                    double adaptive = Math.Sqrt(bc2) / (Math.Sqrt(v[i]) + eps);
                    refUpdate[i] = mHat * lr * adaptive * rect;
                }
                else refUpdate[i] = mHat * lr;
            }
            // compare the UPDATES (TorchSharp's from its own previous value), so one step's
            // difference does not carry into the next
            var tsUpdate = before.Zip(after, (b, a) => b - a).ToArray();
            double ratio = tsUpdate[0] / refUpdate[0];
            bool same = tsUpdate.Zip(refUpdate, (a, b) => Math.Abs(a - b) <= 1e-9 * Math.Abs(b)).All(x => x);
            report.Add($"step {t}: rho_t={rhoT,8:F4} {(rhoT > 5 ? "rectified  " : "unrectified")} "
                       + $"reference update={refUpdate[0]:E6} TorchSharp update={tsUpdate[0]:E6} ratio={ratio:G6}{(same ? "" : "  <- differs")}");
            if (rhoT > 5 && firstRectified == 0) firstRectified = t;
            if (!same && firstDiverged == 0)
            {
                firstDiverged = t;
                ratioIsLr = tsUpdate.Zip(refUpdate, (a, b) => Math.Abs(a / b - lr) <= 1e-9).All(x => x);
            }
            if (!same && rhoT <= 5) agreeBefore = false;
        }

        if (firstDiverged == 0)
            return report.Finish(Outcome.Fixed, $"TorchSharp's RAdam updates equal PyTorch's algorithm for all {steps} steps (lr {lr})");
        if (agreeBefore && firstDiverged == firstRectified && ratioIsLr)
            return report.Finish(Outcome.Reproduced,
                $"updates agree while rho_t <= 5 (steps 1..{firstRectified - 1}); from step {firstRectified} (first rho_t > 5) "
                + $"TorchSharp's update is PyTorch's times lr = {lr}: lr applied twice");
        report.Add("the difference does not have the expected shape (agree until the first rectified step, then a factor lr)");
        throw new InvalidOperationException(string.Join("\n", report.Evidence));
    }
}
