"""How much faster is scoring many episodes at once than looping over them?

For each matching function of :mod:`lga.models.matching` (and CLUSTER-Segment), this script times

- a *naive* version written the way public FSAR code scores a test episode: a python loop over
  episodes, then over query-support pairs, a cosine-distance matrix per pair, and for OTAM the
  dynamic-programming recurrence cell by cell in python; it runs on ``--naive-episodes`` episodes
  and its time is extrapolated to ``--episodes``. OTAM gets a second naive row, the way the
  public OTAM heads run: one episode at a time, all its pairs in one tensor, python loops over
  the grid cells;
- the *batched* version from ``lga``, run on all ``--episodes`` episodes, ``--chunk`` at a time.

It prints, per method: naive and batched milliseconds per episode, the speed-up, the largest
absolute difference between the two results (on the episodes both scored), and the peak extra
memory of one batched call on a chunk, beyond its inputs. On a GPU that is
torch.cuda.max_memory_allocated; on a Linux CPU it is the rise of the resident-set high-water mark
(reset through /proc/self/clear_refs), measured after the timings with glibc told to hand freed
memory straight back (mallopt, malloc_trim) so that the mark follows the live tensors.
Both versions run on ``--threads`` CPU threads (default 1, a like-for-like comparison: the naive
loop's tiny operations gain nothing from more threads).

Episodes are 5-way 1-shot with 1 query per class, T = 8 frames of D = 512 features, float32, made
from a fixed seed: each class has L = 3 random phase vectors, each video a random split of its T
frames into 3 phases, frames are their phase vector plus noise, class texts are the phase vectors
plus noise. Usage::

    python benchmarks/matching.py                      # defaults: 10,000 episodes, 300 naive
    python benchmarks/matching.py --episodes 1000 --naive-episodes 50 --device cuda
"""

from __future__ import annotations

import argparse
import ctypes
import math
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

if __package__ in (None, ""):                                             # run as a script from a checkout
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lga.anatomy.visual import cluster_segment, frame_phase_labels, phase_masks, phase_pool
from lga.models.matching import (ab_mhm_distance, bi_mhm_distance, otam_distance,
                                 prototype_mean_distance, video_text_similarity)

WAY, QUERIES, L, LBDA = 5, 5, 3, 0.1


# ----------------------------------------------------------------------------------------------
# synthetic episodes


def make_chunk(n: int, T: int, D: int, seed: int) -> dict:
    """n episodes: queries q [n, 5, T, D] (query i is of class i), supports s [n, 5, T, D],
    class texts [n, 5, L, D]."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(n, WAY, L, D, generator=g)                      # class phase vectors

    def videos():
        cuts = torch.rand(n * WAY, T - 1, generator=g).argsort(dim=1)[:, : L - 1].sort(dim=1).values + 1
        bounds = torch.cat([torch.zeros(n * WAY, 1, dtype=torch.long), cuts,
                            torch.full((n * WAY, 1), T)], dim=1)
        labels = frame_phase_labels(bounds, T).view(n, WAY, T, 1).expand(n, WAY, T, D)
        return centres.gather(2, labels) + 0.7 * torch.randn(n, WAY, T, D, generator=g)

    s, q = videos(), videos()
    text = centres + torch.randn(n, WAY, L, D, generator=g)
    return {"q": q, "s": s, "text": text}


def add_phases(ep: dict) -> dict:
    """Phase masks (CLUSTER-Segment, overlap 1) and pooled query phases, as the LGA model uses."""
    n, _, T, D = ep["q"].shape
    for key in ("q", "s"):
        x = ep[key].flatten(0, 1)
        ep[key + "_masks"] = phase_masks(cluster_segment(x, L), T).view(n, WAY, L, T)
    ep["q_phases"] = phase_pool(ep["q"].flatten(0, 1), ep["q_masks"].flatten(0, 1)).view(n, WAY, L, D)
    return ep


# ----------------------------------------------------------------------------------------------
# naive versions: one episode, one pair at a time


def cos_dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[T, D] x [U, D] -> [T, U] cosine distances of one pair."""
    return 1 - F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).t()


def naive_pairs(fn):
    """Lift a one-pair function to all pairs of all episodes with python loops."""
    def run(ep, episodes):
        out = torch.zeros(len(episodes), QUERIES, WAY)
        for e in episodes:
            for i in range(QUERIES):
                for j in range(WAY):
                    out[e - episodes[0], i, j] = fn(ep, e, i, j)
        return out
    return run


def otam_python(d: list, lbda: float) -> float:
    """OTAM's recurrence over one [T][U] distance table, python floats, zero-padded columns."""
    T, M = len(d), len(d[0]) + 2
    d = [[0.0] + row + [0.0] for row in d]

    def softmin(*xs):
        lo = min(xs)
        return lo - lbda * math.log(sum(math.exp((lo - x) / lbda) for x in xs))

    C = [[0.0] * M for _ in range(T)]
    for m in range(1, M):
        C[0][m] = d[0][m] + C[0][m - 1]
    for l in range(1, T):
        C[l][1] = d[l][1] + softmin(C[l - 1][0], C[l - 1][1], C[l][0])
        for m in range(2, M - 1):
            C[l][m] = d[l][m] + softmin(C[l - 1][m - 1], C[l][m - 1])
        C[l][M - 1] = d[l][M - 1] + softmin(C[l - 1][M - 2], C[l - 1][M - 1], C[l][M - 2])
    return C[T - 1][M - 1]


def naive_otam_pair(ep, e, i, j):
    d = cos_dist(ep["q"][e, i], ep["s"][e, j])
    return 0.5 * (otam_python(d.tolist(), LBDA) + otam_python(d.t().tolist(), LBDA))


def otam_episode_loop(ep, episodes):
    """OTAM the way public FSAR code runs it: one episode at a time, all its pairs as one tensor,
    python loops over the grid cells."""
    outs = []
    for e in episodes:
        q, s = F.normalize(ep["q"][e], dim=-1), F.normalize(ep["s"][e], dim=-1)
        dist = 1 - torch.einsum("itd,jud->ijtu", q, s)                    # [Nq, Ns, T, U]

        def one_way(dd):
            dd = F.pad(dd, (1, 1))
            cum = torch.zeros_like(dd)
            T, M = dd.shape[-2:]

            def softmin(*xs):
                return -LBDA * torch.logsumexp(torch.stack([-x / LBDA for x in xs]), dim=0)

            for m in range(1, M):
                cum[:, :, 0, m] = dd[:, :, 0, m] + cum[:, :, 0, m - 1]
            for l in range(1, T):
                cum[:, :, l, 1] = dd[:, :, l, 1] + softmin(cum[:, :, l - 1, 0], cum[:, :, l - 1, 1],
                                                           cum[:, :, l, 0])
                for m in range(2, M - 1):
                    cum[:, :, l, m] = dd[:, :, l, m] + softmin(cum[:, :, l - 1, m - 1], cum[:, :, l, m - 1])
                cum[:, :, l, -1] = dd[:, :, l, -1] + softmin(cum[:, :, l - 1, -2], cum[:, :, l - 1, -1],
                                                             cum[:, :, l, -2])
            return cum[:, :, -1, -1]

        outs.append(0.5 * (one_way(dist) + one_way(dist.transpose(-1, -2))))
    return torch.stack(outs)


def mhm(d: torch.Tensor) -> torch.Tensor:
    return d.min(dim=1).values.mean() + d.min(dim=0).values.mean()


def naive_bi_mhm_pair(ep, e, i, j):
    return mhm(cos_dist(ep["q"][e, i], ep["s"][e, j]))


def naive_ab_mhm_pair(ep, e, i, j):
    total = 0.0
    for p in range(L):
        qf = ep["q"][e, i][ep["q_masks"][e, i, p]]                        # frames of phase p
        sf = ep["s"][e, j][ep["s_masks"][e, j, p]]
        total = total + mhm(cos_dist(qf, sf))
    return total


def naive_proto_pair(ep, e, i, j):
    return (ep["q"][e, i].mean(0) - ep["s"][e, j].mean(0)).pow(2).sum()


def naive_video_text_pair(ep, e, i, j):
    qp, t = ep["q_phases"][e, i], ep["text"][e, j]                       # [L, D] each
    return sum(F.cosine_similarity(qp[p], t[p], dim=0) for p in range(L)) / L


def naive_cluster(ep, episodes):
    """CLUSTER-Segment one video at a time, clusters as python lists."""
    out = []
    for e in episodes:
        for key in ("q", "s"):
            for v in range(WAY):
                frames = ep[key][e, v]
                clusters = [[t] for t in range(frames.shape[0])]
                while len(clusters) > L:
                    means = [frames[c].mean(0) for c in clusters]
                    sims = [F.cosine_similarity(means[k], means[k + 1], dim=0).item()
                            for k in range(len(means) - 1)]
                    k = sims.index(max(sims))
                    clusters[k: k + 2] = [clusters[k] + clusters[k + 1]]
                out.append([c[0] for c in clusters] + [frames.shape[0]])
    return torch.tensor(out)


# ----------------------------------------------------------------------------------------------
# batched versions (the library), with the same output layout as the naive ones


def batched_cluster(ep):
    n, _, T, D = ep["q"].shape
    both = torch.stack([ep["q"], ep["s"]], dim=1).flatten(0, 2)           # [n*2*WAY, T, D] like naive
    return cluster_segment(both, L)


METHODS = {
    # name: (naive(ep, episodes), batched(ep))
    "prototype (mean, sq. Eucl.)": (naive_pairs(naive_proto_pair),
                                    lambda ep: prototype_mean_distance(ep["q"], ep["s"])),
    "bi_mhm": (naive_pairs(naive_bi_mhm_pair), lambda ep: bi_mhm_distance(ep["q"], ep["s"])),
    "ab_mhm": (naive_pairs(naive_ab_mhm_pair),
               lambda ep: ab_mhm_distance(ep["q"], ep["q_masks"], ep["s"], ep["s_masks"])),
    "video_text": (naive_pairs(naive_video_text_pair),
                   lambda ep: video_text_similarity(ep["q_phases"], ep["text"])),
    "otam (python DTW per pair)": (naive_pairs(naive_otam_pair),
                                   lambda ep: otam_distance(ep["q"], ep["s"], LBDA)),
    "otam (per-episode loop)": (otam_episode_loop, lambda ep: otam_distance(ep["q"], ep["s"], LBDA)),
    "cluster_segment": (naive_cluster, batched_cluster),
}


# ----------------------------------------------------------------------------------------------
# measuring


try:
    _LIBC = ctypes.CDLL("libc.so.6")                                      # glibc (Linux)
except OSError:
    _LIBC = None


def return_freed_memory_to_os() -> bool:
    """Make glibc serve every allocation of >= 64 KiB with its own mmap, freed back to the OS at
    once, so the resident-set high-water mark follows the live tensors (Linux/glibc only)."""
    try:
        return _LIBC.mallopt(-3, 1 << 16) == 1                         # -3: M_MMAP_THRESHOLD
    except AttributeError:
        return False


class PeakMemory:
    """Peak extra memory (MB) of a block: CUDA allocator stats, or the Linux resident-set
    high-water mark (VmHWM, reset through /proc/self/clear_refs) above the resident set at entry."""

    def __init__(self, device: torch.device):
        self.device, self.mb = device, float("nan")

    @staticmethod
    def _status(field: str) -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1]) / 1024                       # kB -> MB
        return float("nan")

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            return self
        try:
            _LIBC.malloc_trim(0)                                           # hand free heap pages back
            Path("/proc/self/clear_refs").write_text("5")                  # reset VmHWM to VmRSS
            self.base = self._status("VmRSS")
        except (OSError, AttributeError):
            self.base = None
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.mb = (torch.cuda.max_memory_allocated() - self.base) / 2 ** 20
        elif self.base is not None:
            self.mb = self._status("VmHWM") - self.base
        return False


def timed(fn, *args, device=torch.device("cpu")):
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn(*args)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--episodes", type=int, default=10_000, help="episodes for the batched version")
    ap.add_argument("--naive-episodes", type=int, default=300, help="episodes for the naive loops")
    ap.add_argument("--chunk", type=int, default=1000, help="episodes per batched call")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads for both versions (default 1: a like-for-like comparison)")
    ap.add_argument("--device", default="cpu", help="device for the batched version (naive: CPU)")
    ap.add_argument("--methods", nargs="*", default=list(METHODS), help="subset of: " + ", ".join(METHODS))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    chunk = max(args.chunk, args.naive_episodes)                          # naive episodes = start of chunk 0
    n_chunks = math.ceil(args.episodes / chunk)
    print(f"torch {torch.__version__} | {platform.processor() or platform.machine()} | "
          f"{torch.get_num_threads()} threads | batched on {device} | float32")
    print(f"{args.episodes} episodes (5-way 1-shot, 5 queries, T={args.frames}, D={args.dim}) in "
          f"{n_chunks} chunks of <= {chunk}; naive loops on {args.naive_episodes} episodes, seed {args.seed}")
    t_start = time.perf_counter()

    # 1. batched, every episode, chunk by chunk (making the episodes is not timed)
    batched_s = {name: 0.0 for name in args.methods}
    first = {}
    for c in range(n_chunks):
        n = min(chunk, args.episodes - c * chunk)
        ep = add_phases(make_chunk(n, args.frames, args.dim, seed=args.seed * 100_003 + c))
        if c == 0:
            ep0 = ep
        ep = {k: v.to(device) for k, v in ep.items()}
        for name in args.methods:
            with torch.no_grad():
                out, secs = timed(METHODS[name][1], ep, device=device)
            batched_s[name] += secs
            if c == 0:
                first[name] = out.cpu()
        del ep

    # 2. naive, on the first episodes of chunk 0
    rows = []
    naive_ep = {k: v[: args.naive_episodes] for k, v in ep0.items()}
    episodes = list(range(args.naive_episodes))
    for name in args.methods:
        with torch.no_grad():
            ref, secs = timed(METHODS[name][0], naive_ep, episodes)
        got = first[name][: ref.shape[0]]                                 # same episodes (videos)
        diff = (got.double() - ref.double()).abs().max().item()
        naive_ms = 1000 * secs / args.naive_episodes
        batched_ms = 1000 * batched_s[name] / args.episodes
        rows.append([name, naive_ms, batched_ms, naive_ms / batched_ms, diff])

    # 3. peak memory of one batched call on chunk 0 (after the timings: it changes malloc's policy)
    if device.type == "cpu":
        return_freed_memory_to_os()
    ep0 = {k: v.to(device) for k, v in ep0.items()}
    for row in rows:
        with torch.no_grad(), PeakMemory(device) as mem:
            METHODS[row[0]][1](ep0)
        row.append(mem.mb)

    head = ("method", "naive ms/ep", "batched ms/ep", "speed-up", "max |diff|", f"peak MB/{chunk} ep")
    print()
    print(f"{head[0]:<30}{head[1]:>12}{head[2]:>15}{head[3]:>10}{head[4]:>12}{head[5]:>18}")
    for name, nm, bm, sp, df, mb in rows:
        print(f"{name:<30}{nm:>12.3f}{bm:>15.4f}{sp:>9.0f}x{df:>12.1e}{mb:>18.0f}")
    naive_total = sum(r[1] for r in rows) * args.episodes / 1000
    print(f"\nall rows for {args.episodes} episodes: naive {naive_total:.0f} s "
          f"(extrapolated), batched {sum(batched_s.values()):.1f} s (measured)")
    print(f"total wall time {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
