"""The ``safetensors`` route: safetensors' ``save``/``load`` <-> TorchSharp.PyBridge's
``load_safetensors``/``save_safetensors`` (modules) and ``Safetensors.LoadStateDict``/
``SaveStateDict`` (a single tensor, as ``{"tensor": t}``). It carries tensors only: no
optimizer state (safetensors has no place for non-tensor values).

PyTorch's side runs the real ``safetensors`` package where there is one: Debian packages it
for Python 3.13 only (the PyTorch 2.6 root), so on the host's Python 3.11 the route is
unavailable. The harness's own writer (:func:`write_state_dict`, for files the checks make
themselves) needs no package: the format is an 8-byte little-endian header length, a JSON
header ``{name: {dtype, shape, data_offsets}}`` and the raw little-endian bytes.
"""
from __future__ import annotations

import json
import struct
from typing import Any, BinaryIO

import torch

from harness.routes.base import Route, RouteUnavailable, guarded
from harness.routes.pth import TENSOR_KEY, one_tensor

UNAVAILABLE = "no safetensors for Debian 12's Python (Debian packages safetensors for Python 3.13 only)"

# torch dtype -> safetensors' dtype name (the names safetensors' own writer uses)
DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
          torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
          torch.bool: "BOOL"}


def _lib() -> Any:
    try:
        import safetensors.torch
    except ImportError as exc:
        raise RouteUnavailable(UNAVAILABLE) from exc
    return safetensors.torch


def available() -> bool:
    try:
        _lib()
    except RouteUnavailable:
        return False
    return True


class SafetensorsForm:
    """The Python half: the safetensors package. Inverse pairs: save_state_dict /
    load_state_dict, write_tensor / read_tensor (no optimizer state: the route does not carry it)."""

    name = "safetensors"
    can_read_optimizer = False
    can_read_tensor = True

    def __init__(self, variant: str = "") -> None:
        if variant:
            raise ValueError(f"route safetensors has no file form {variant!r}")
        self.lib = _lib()

    def save_state_dict(self, state_dict: dict[str, torch.Tensor], f: BinaryIO) -> None:
        """``safetensors.torch.save(state_dict)`` written to ``f``; inverse of :meth:`load_state_dict`."""
        f.write(guarded("safetensors", "safetensors.torch.save", self.lib.save, state_dict))

    def load_state_dict(self, f: BinaryIO) -> dict[str, torch.Tensor]:
        """``safetensors.torch.load(f.read())``; inverse of :meth:`save_state_dict`."""
        return dict(guarded("safetensors", "safetensors.torch.load", self.lib.load, f.read()))

    def save_optimizer(self, optimizer: torch.optim.Optimizer, f: BinaryIO) -> None:
        raise RouteUnavailable("route safetensors carries no optimizer state")

    def load_optimizer(self, optimizer: torch.optim.Optimizer, f: BinaryIO) -> None:
        raise RouteUnavailable("route safetensors carries no optimizer state")

    def write_tensor(self, tensor: torch.Tensor, path: Any) -> None:
        """``safetensors.torch.save_file({"tensor": t}, path)``; inverse of :meth:`read_tensor`."""
        guarded("safetensors", "safetensors.torch.save_file", self.lib.save_file, {TENSOR_KEY: tensor}, str(path))

    def read_tensor(self, path: Any) -> torch.Tensor:
        """The one tensor of a ``{"tensor": t}`` file; inverse of :meth:`write_tensor`."""
        return one_tensor(guarded("safetensors", "safetensors.torch.load_file", self.lib.load_file, str(path)),
                          "safetensors", path)

    def raw(self, attr: str) -> Any:
        return {"load_state_dict": lambda f: self.lib.load(f.read())}[attr]


def encode(state: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> bytes:
    """A safetensors file's bytes for ``state`` (the harness's own writer; tensors in the
    order given, each copied contiguous); inverse of :func:`decode`."""
    header: dict[str, Any] = {"__metadata__": dict(metadata)} if metadata else {}
    chunks, offset = [], 0
    for name, t in state.items():
        if t.dtype not in DTYPES:
            raise ValueError(f"safetensors has no dtype for {name!r} ({t.dtype})")
        data = t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    return _join(header, b"".join(chunks))


def _join(header: dict[str, Any], body: bytes) -> bytes:
    """A file's bytes: the header's length, the header (JSON padded with spaces to a multiple of 8
    bytes, as safetensors' own writer pads it), the data; inverse of :func:`_split`."""
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + body


def _split(data: bytes) -> tuple[dict[str, Any], bytes]:
    """A file's header (in its order) and the data after it; inverse of :func:`_join`."""
    (n,) = struct.unpack_from("<Q", data, 0)
    return json.loads(data[8:8 + n]), data[8 + n:]


def decode(data: bytes) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file's bytes, in header order; inverse of :func:`encode`."""
    header, body = _split(data)
    names = {v: k for k, v in DTYPES.items()}
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        begin, end = e["data_offsets"]
        raw = bytearray(body[begin:end])
        t = torch.frombuffer(raw, dtype=torch.uint8) if raw else torch.empty(0, dtype=torch.uint8)
        out[name] = t.view(names[e["dtype"]]).reshape(e["shape"])
    return out


# what the "bytes after the data" copy appends
TRAILING = b"\xde\xad\xbe\xef" * 2


def _nbytes(entry: dict[str, Any]) -> int:
    begin, end = entry["data_offsets"]
    return int(end) - int(begin)


def damaged_forms(data: bytes) -> list[tuple[str, bytes]]:
    """Copies of a valid safetensors file that break the format's layout rule and nothing else:
    the header stays valid JSON with its length right, and every entry keeps its dtype, shape
    and byte length. The rule, which safetensors' own reader enforces (``InvalidOffset``,
    ``MetadataIncompleteBuffer``): taken in the order of their offsets, the entries cover the
    data after the header exactly, each starting where the one before it ended and the last
    ending at the end of the file.

    - two tensors' data_offsets overlapping (a file of two or more non-empty tensors): one
      tensor's bytes are cut out of the data, the later tensors' offsets closed up over the gap
      (so the others still cover the data exactly), and that tensor pointed at the start of the
      data, over the first tensor there. The tensor moved is the smallest whose own bytes differ
      from the ones it then points at (a reader that follows the offsets gets other values),
      among those no larger than the rest of the data; if every one reads its own bytes there,
      the smallest;
    - bytes after the last tensor's data: :data:`TRAILING` appended to the file.
    """
    header, body = _split(data)
    out = []
    filled = sorted((k for k, e in header.items() if k != "__metadata__" and _nbytes(e) > 0),
                    key=lambda k: (_nbytes(header[k]), int(header[k]["data_offsets"][0])))
    fitting = [k for k in filled if 2 * _nbytes(header[k]) <= len(body)]
    if len(filled) >= 2 and fitting:
        def moved_onto_start(victim: str) -> tuple[dict[str, Any], bytes]:
            begin, end = (int(x) for x in header[victim]["data_offsets"])
            size = end - begin
            out_header: dict[str, Any] = {}
            for name, e in header.items():
                if name == "__metadata__":
                    out_header[name] = e
                    continue
                b, en = (int(x) for x in e["data_offsets"])
                shift = size if b >= end else 0
                out_header[name] = {**e, "data_offsets": [0, size] if name == victim else [b - shift, en - shift]}
            return out_header, body[:begin] + body[end:]

        def reads_other_bytes(victim: str) -> bool:
            begin, end = (int(x) for x in header[victim]["data_offsets"])
            return moved_onto_start(victim)[1][:end - begin] != body[begin:end]

        victim = next((k for k in fitting if reads_other_bytes(k)), fitting[0])
        moved, cut = moved_onto_start(victim)
        host = next(k for k in sorted(filled, key=lambda k: int(moved[k]["data_offsets"][0])) if k != victim)
        out.append((f"two tensors' data_offsets overlapping ({victim!r} moved to [0, {_nbytes(moved[victim])}), "
                    f"over {host!r} at [0, {_nbytes(moved[host])}))", _join(moved, cut)))
    out.append((f"{len(TRAILING)} bytes after the last tensor's data", data + TRAILING))
    return out


def write_state_dict(path: Any, state: dict[str, torch.Tensor]) -> None:
    """The harness's own ``.safetensors`` writer (no package needed)."""
    with open(path, "wb") as f:
        f.write(encode(state))


CHECKPOINT_NAMES = ("model.safetensors", "model.safetensors.index.json", "model-{i:05d}-of-{n:05d}.safetensors")

SAFETENSORS = Route(
    name="safetensors", suffix=".safetensors",
    title="safetensors save/load <-> TorchSharp.PyBridge load_safetensors/save_safetensors",
    carries=frozenset({"module", "tensor", "checkpoint"}), byte_stable=False,
    python_form=SafetensorsForm, write_state_dict=write_state_dict, python_unavailable=UNAVAILABLE,
    checkpoint_names=CHECKPOINT_NAMES,
    dtypes=frozenset(str(d).removeprefix("torch.") for d in DTYPES),
    damaged_forms_of=damaged_forms)
