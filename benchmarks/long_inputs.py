"""Long inputs: NucEL (block-local attention on its local layers) against stock transformers ModernBertModel with
the same weights and shape, in one process, interleaved; then how NucEL's time and memory grow with length.

    python benchmarks/long_inputs.py                                  # CPU shape (128 x 3), 8k/32k; growth 1k..64k
    python benchmarks/long_inputs.py --published --compare-lengths 20002 --growth-lengths   # 512 x 22, 20 kbp
    python benchmarks/long_inputs.py --published --device cuda --dtype bf16

Memory is the peak above what was resident before the forward: on CPU the process's peak RSS (VmHWM, reset
through /proc/self/clear_refs before each forward); on CUDA `torch.cuda.max_memory_allocated`. Both models see
one sequence without padding, in inference mode.
"""

import argparse
import ctypes
import statistics
import time

import torch
import transformers
from _harness import random_windows, synchronize

from nucel.modeling_nucel import NucELConfig, NucELModel
from nucel.modeling_nucel.modeling_nucel import build_attention_masks, rotary_cos_sin


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--layers", type=int, default=3, help="every 3rd layer is global, from the first")
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--published", action="store_true", help="the published 512 x 22 shape (16 heads, GeGLU 2048)")
    parser.add_argument("--compare-lengths", type=int, nargs="*", default=[8192, 32768],
                        help="lengths timed for NucEL and stock ModernBERT")
    parser.add_argument("--growth-lengths", type=int, nargs="*", default=[1024, 4096, 16384, 65536],
                        help="lengths of the NucEL growth table")
    parser.add_argument("--repeats", type=int, default=2, help="timed forwards per model and length (median)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--attn-implementation", default="sdpa", choices=["sdpa", "eager"])
    return parser.parse_args()


try:
    _libc = ctypes.CDLL("libc.so.6")
except OSError:
    _libc = None


class PeakMemory:
    """Peak memory of a block of code above what was resident before it, in bytes (None: cannot be measured)."""

    def __init__(self, device):
        self.device = device
        self.bytes = None

    @staticmethod
    def _status_kb(field):
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise OSError(f"/proc/self/status has no {field}")

    def __enter__(self):
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._before = torch.cuda.memory_allocated()
            return self
        if _libc is not None:  # hand freed heap back to the OS, or the next forward reuses it unseen
            _libc.malloc_trim(0)
        try:
            with open("/proc/self/clear_refs", "w") as clear:  # "5": reset the peak resident set to the current one
                clear.write("5")
            self._before = self._status_kb("VmRSS") * 1024
        except OSError:
            self._before = None
        return self

    def __exit__(self, *exc):
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            self.bytes = torch.cuda.max_memory_allocated() - self._before
        elif self._before is not None:
            self.bytes = self._status_kb("VmHWM") * 1024 - self._before
        return False


def megabytes(n_bytes):
    return "not measured (no /proc/self/clear_refs)" if n_bytes is None else f"{n_bytes / 2**20:,.0f}"


def timed(device, function):
    """(seconds, peak bytes) of one call."""
    with PeakMemory(device) as memory:
        synchronize(device)
        start = time.perf_counter()
        function()
        synchronize(device)
        seconds = time.perf_counter() - start
    return seconds, memory.bytes


def build_models(args, max_length):
    if args.published:
        config = NucELConfig(max_position_embeddings=max_length, attn_implementation=args.attn_implementation)
    else:
        config = NucELConfig(hidden_size=args.hidden_size, intermediate_size=2 * args.hidden_size,
                             num_hidden_layers=args.layers, num_attention_heads=args.heads,
                             max_position_embeddings=max_length, attn_implementation=args.attn_implementation)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    torch.manual_seed(0)
    nucel = NucELModel(config).to(args.device, dtype).eval()
    stock = transformers.ModernBertModel._from_config(config.to_modernbert_config(),
                                                      attn_implementation=args.attn_implementation)
    stock.load_state_dict(nucel.state_dict(), strict=True)
    return config, nucel, stock.to(args.device, dtype).eval()


def random_ids(length, device):
    return random_windows(1, length, seed=length).to(device)


def compare_with_stock(args, nucel, stock):
    models = {"NucEL": lambda ids: nucel(ids).last_hidden_state,
              "stock ModernBertModel": lambda ids: stock(ids).last_hidden_state}
    with torch.inference_mode():
        for forward in models.values():  # warm-up: kernels, allocator
            forward(random_ids(1024, args.device))
        rows = []
        for length in args.compare_lengths:
            ids = random_ids(length, args.device)
            outputs = {name: forward(ids) for name, forward in models.items()}
            difference = (outputs["NucEL"].float() - outputs["stock ModernBertModel"].float()).abs().max().item()
            del outputs
            times, memory = {name: [] for name in models}, {}
            for _ in range(args.repeats):  # interleaved, so machine noise hits both alike
                for name, forward in models.items():
                    seconds, peak = timed(args.device, lambda: forward(ids))
                    times[name].append(seconds)
                    memory[name] = peak if memory.get(name) is None else max(memory[name], peak)
            rows.append((length, {name: statistics.median(t) for name, t in times.items()}, memory, difference))
    print("| tokens | model | forward (s, median) | peak memory (MB) | time vs stock | memory vs stock | "
          "max abs diff vs stock |")
    print("|---|---|---|---|---|---|---|")
    for length, times, memory, difference in rows:
        for name in models:
            time_ratio = times[name] / times["stock ModernBertModel"]
            memory_ratio = (f"{memory[name] / memory['stock ModernBertModel']:.3f}"
                            if memory[name] is not None and memory["stock ModernBertModel"] else "-")
            print(f"| {length:,} | {name} | {times[name]:.2f} | {megabytes(memory[name])} | {time_ratio:.3f} | "
                  f"{memory_ratio} | {difference:.1e} |")


def growth_table(args, config, nucel):
    """Per-layer time of one local and one global layer, and the whole forward, at each length."""
    local_index = config.layer_types.index("sliding_attention") if "sliding_attention" in config.layer_types else None
    global_index = config.layer_types.index("full_attention")
    head_dim = config.hidden_size // config.num_attention_heads
    dtype = next(nucel.parameters()).dtype
    print("| tokens | local layer (ms) | local (us/token) | global layer (ms) | global (us/token) | "
          "forward (s) | peak memory (MB) | memory (bytes/token) |")
    print("|---|---|---|---|---|---|---|---|")
    with torch.inference_mode():
        for length in args.growth_lengths:
            ids = random_ids(length, args.device)
            masks = build_attention_masks(args.attn_implementation, None, 1, length, config.local_attention // 2,
                                          torch.device(args.device))
            positions = torch.arange(length, device=args.device)[None]
            hidden = torch.randn(1, length, config.hidden_size, device=args.device, dtype=dtype)

            def layer_ms(index):
                if index is None:
                    return float("nan")
                layer = nucel.layers[index]
                full = layer.attention_type == "full_attention"
                theta = config.global_rope_theta if full else config.local_rope_theta
                cos, sin = rotary_cos_sin(positions, head_dim, theta, dtype)

                def run():
                    return layer(hidden, cos, sin, masks[layer.attention_type], args.attn_implementation)

                run()
                return statistics.median(timed(args.device, run)[0] for _ in range(args.repeats)) * 1e3

            local_ms, global_ms = layer_ms(local_index), layer_ms(global_index)
            forward_s, peak = timed(args.device, lambda: nucel(ids))
            per_token = f"{peak / length:,.0f}" if peak is not None else "-"
            print(f"| {length:,} | {local_ms:,.1f} | {local_ms * 1e3 / length:.2f} | {global_ms:,.1f} | "
                  f"{global_ms * 1e3 / length:.2f} | {forward_s:.2f} | {megabytes(peak)} | {per_token} |")


def main():
    args = parse_args()
    lengths = args.compare_lengths + args.growth_lengths
    config, nucel, stock = build_models(args, max(lengths + [1024]))
    print(f"\ndevice={args.device} dtype={args.dtype} attn={args.attn_implementation} "
          f"threads={torch.get_num_threads()} "
          f"shape={config.hidden_size}x{config.num_hidden_layers} heads={config.num_attention_heads} "
          f"window={config.local_attention} global every {config.global_attn_every_n_layers} "
          f"transformers={transformers.__version__} torch={torch.__version__}\n")
    if args.compare_lengths:
        compare_with_stock(args, nucel, stock)
        print("\ngoals at 32,768 tokens: NucEL >= 2x faster than stock and <= 1/4 of its peak memory\n")
    del stock
    if args.growth_lengths:
        growth_table(args, config, nucel)
        print("\nlocal layers: constant time per token (linear in length); global layers: time per token grows with "
              "length (quadratic)")


if __name__ == "__main__":
    main()
