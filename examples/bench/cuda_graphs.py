"""Would CUDA graphs pay for limn's frames? Times DCT-Net's network on one frame size launched op by
op, from Python (eager) and from TorchScript's interpreter (traced and frozen, as limn runs a model),
against the same network replayed as a captured CUDA graph (torch.cuda.graph), in one script,
alternating for --rounds rounds; prints the median ms per frame and graph/scripted, the ratio that
decides (limn launches as TorchScript does).

    PYTHONPATH=models python3 examples/bench/cuda_graphs.py [--size 512x512 ...] [--precision fp16]

The network is DCT-Net's architecture with random weights (limn_models.dctnet), channels-last, in
fp16 by default, on a static input as a frame loop's would be; each frame ends with a stream
synchronisation (the engine's present). A graph removes the per-operator launch cost on the CPU,
not the GPU's work, so the ratio says how much of a frame that launch cost is. Without CUDA it says
so and exits 0 (the GPU harness's dry run).
"""

import argparse
import statistics
import sys
import time
import warnings

import torch

from limn_models import dctnet


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", action="append", default=None, help="WxH (repeatable; default 512x512 and 1024x1024)")
    ap.add_argument("--precision", choices=["fp16", "bf16", "fp32"], default="fp16")
    ap.add_argument("--frames", type=int, default=20, help="frames per round and way")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("cuda_graphs: skipped, no CUDA device")
        return 0
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[args.precision]
    net = dctnet.DCTNetRGB(dctnet.dctnet_random_init(0)).eval().to("cuda", dtype).to(memory_format=torch.channels_last)
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, DCT-Net {args.precision}, "
          f"{args.frames} frames x {args.rounds} rounds")
    print(f"{'size':<10} {'eager ms':>9} {'scripted ms':>12} {'graph ms':>9} {'graph/scripted':>15}")
    for size in args.size or ["512x512", "1024x1024"]:
        w, h = (int(v) for v in size.split("x"))
        static_in = torch.rand(1, 3, h, w, device="cuda", dtype=dtype).to(memory_format=torch.channels_last)
        side = torch.cuda.Stream()
        with torch.inference_mode():
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):  # warm-up off the default stream, as capture requires
                for _ in range(3):
                    net(static_in)
            torch.cuda.current_stream().wait_stream(side)
            # TorchScript, as limn runs a model: traced, frozen, warmed up (its profiling runs).
            with warnings.catch_warnings():  # the padding's size test: constant for one frame size
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                scripted = torch.jit.freeze(torch.jit.trace(net, static_in))
            for _ in range(3):
                scripted(static_in)
            torch.cuda.synchronize()
            graph = torch.cuda.CUDAGraph()
            try:
                with torch.cuda.graph(graph):
                    static_out = net(static_in)
            except Exception as e:  # a finding in itself: the network as it is cannot be captured
                print(f"{size:<10} graph capture failed: {type(e).__name__}: {str(e).splitlines()[0]}")
                torch.cuda.set_stream(torch.cuda.default_stream())  # a failed capture may leave its own
                torch.cuda.synchronize()
                continue
            ways = {"eager": net, "scripted": scripted, "graph": lambda _: graph.replay()}
            times = {way: [] for way in ways}
            for _ in range(args.rounds):
                for way, run in ways.items():
                    for _ in range(args.frames):
                        t0 = time.perf_counter()
                        run(static_in)
                        torch.cuda.synchronize()
                        times[way].append((time.perf_counter() - t0) * 1e3)
            # The graph computes what the launched network does.
            same = torch.allclose(static_out.float(), net(static_in).float(), atol=1e-2)
        e, t, g = (statistics.median(times[way]) for way in ways)
        print(f"{size:<10} {e:>9.2f} {t:>12.2f} {g:>9.2f} {g / t:>15.3f}{'' if same else '  (graph output differs!)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
