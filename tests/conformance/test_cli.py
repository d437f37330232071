"""`python3 -m harness run` end to end against real TorchSharp, with ours and with a codec
given as a folder in upstream's layout (exportsd.py / importsd.py)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A FAKE codec release in upstream's layout: wraps ours, optionally flipping one bit.
EXPORTSD = '''
from harness.codec import exportsd as _ours
FLIP = {flip}

def save_state_dict(state_dict, f):
    import io
    buf = io.BytesIO()
    _ours.save_state_dict(state_dict, buf)
    data = bytearray(buf.getvalue())
    if FLIP:
        data[-1] ^= 1
    f.write(data)

save_adam = _ours.save_adam
write_tensor = _ours.write_tensor
'''
IMPORTSD = "from harness.codec.importsd import load_state_dict\n"


def _codec_folder(tmp_path: Path, flip: bool) -> Path:
    folder = tmp_path / ("flipping_release" if flip else "release")
    folder.mkdir()
    (folder / "exportsd.py").write_text(EXPORTSD.format(flip=flip))
    (folder / "importsd.py").write_text(IMPORTSD)
    return folder


def _run(tmp_path: Path, *args: str) -> tuple[int, dict]:
    out = tmp_path / "reports"
    proc = subprocess.run([sys.executable, "-m", "harness", "run", "--out", str(out), "--run-id", "r",
                           "--device", "cpu", "--pytorch", "host", "--torchsharp", "default", "--driver", "csharp",
                           *(() if "--route" in args else ("--route", "dat")), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    report = out / "r" / "matrix.json"
    assert report.exists(), proc.stdout + proc.stderr
    for name in ("matrix.md", "index.html", "junit.xml"):
        assert (out / "r" / name).exists()
    (line,) = (out / "history.jsonl").read_text(encoding="utf-8").splitlines()  # the run's one history line
    assert json.loads(line)["run_id"] == "r" and json.loads(line)["matrix"] == "r/matrix.json"
    return proc.returncode, json.loads(report.read_text())


def test_run_with_upstream_layout_codec_folder(tmp_path):
    code, report = _run(tmp_path, "--codec", str(_codec_folder(tmp_path, flip=False)),
                        "--case", "lenet1", "--case", "adam_two_groups", "--case", "tensor_float32_vector")
    assert code == 0
    assert report["schema_version"] == 1
    assert {"torch", "TorchSharp", "libtorch", "dotnet", "os", "commit"} <= set(report["provenance"])
    outcome = {(c["case"], c["check"]): c["outcome"] for c in report["cells"]}
    assert {c["codec"] for c in report["cells"]} == {"release"}
    assert outcome["lenet1", "py2ts"] == "pass"
    assert outcome["adam_two_groups", "py2ts"] == "pass"
    # upstream's layout has no optimizer or tensor reader: those halves are skipped, never passed
    assert outcome["adam_two_groups", "ts2py"] == "skip"
    assert outcome["tensor_float32_vector", "tensor_py2ts"] == "pass"
    assert outcome["tensor_float32_vector", "tensor_ts2py"] == "skip"


def test_run_exits_non_zero_when_a_cell_fails(tmp_path):
    code, report = _run(tmp_path, "--codec", str(_codec_folder(tmp_path, flip=True)),
                        "--case", "lenet1", "--check", "py2ts")
    assert code == 1
    (cell,) = report["cells"]
    assert cell["outcome"] == "fail"
    assert Path(cell["evidence"], "repro.sh").exists()


def test_a_failing_cells_repro_replays_exactly_it_whatever_python3_is_first_on_path(tmp_path):
    # The codec under test lives outside the checkout and is gone by the time the repro runs:
    # the repro uses the copy saved beside it. The python3 first on PATH has no PyTorch.
    codec = _codec_folder(tmp_path, flip=True)
    code, report = _run(tmp_path, "--codec", str(codec), "--case", "lenet1", "--check", "py2ts")
    assert code == 1
    (cell,) = report["cells"]
    repro = Path(cell["evidence"], "repro.sh")
    text = repro.read_text()
    assert f"{sys.executable} -m harness run" in text and "--pytorch host" in text and "--device cpu" in text
    for p in codec.iterdir():
        p.unlink()
    codec.rmdir()
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "python3").write_text("#!/bin/sh\necho 'this python3 has no torch' >&2\nexit 97\n")
    (fake_bin / "python3").chmod(0o755)
    env = {"PATH": f"{fake_bin}:/usr/bin:/bin", "HOME": str(tmp_path)}
    for k in ("HARNESS_BUILD_DIR", "DOTNET_ROOT", "DOTNET_CLI_HOME"):
        if k in __import__("os").environ:
            env[k] = __import__("os").environ[k]
    proc = subprocess.run(["/bin/sh", str(repro)], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    replay = json.loads((ROOT / "reports" / f"repro-{repro.parent.name}" / "matrix.json").read_text())
    (again,) = replay["cells"]
    assert again["id"] == cell["id"]
    assert (again["outcome"], again["reason"]) == (cell["outcome"], cell["reason"])


def test_jobs_give_the_same_matrix_as_a_serial_run(tmp_path):
    def run(jobs: str) -> list[dict]:
        out = tmp_path / f"reports-{jobs}"
        proc = subprocess.run([sys.executable, "-m", "harness", "run", "--out", str(out), "--run-id", "r",
                               "--device", "cpu", "--pytorch", "host", "--torchsharp", "default", "--driver", "csharp",
                               "--case", "lenet1", "--case", "radam_two_groups", "--case", "tensor_float32_vector",
                               "--jobs", jobs], cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert proc.returncode in (0, 1), proc.stdout + proc.stderr
        cells = json.loads((out / "r" / "matrix.json").read_text())["cells"]
        for c in cells:
            c.pop("duration_s")
            if c["evidence"]:  # the same place relative to each run's folder
                c["evidence"] = str(Path(c["evidence"]).relative_to(out))
        return cells
    serial, parallel = run("1"), run("2")
    assert [c["id"] for c in parallel] == [c["id"] for c in serial]
    assert parallel == serial
