"""The PyTorch peer of `throughput.py`: `../shared/bench/torch_ref.py` extended to more shapes.

Runs in a separate Python with torch (never a tfmeta dependency): `throughput.py --torch`
starts it as a subprocess. Same workloads as the shared reference (MAML second or first
order and ProtoNet with squared Euclidean distance on random episodes, Adam 1e-3, batch norm
on batch statistics, one step per meta-batch, tasks looped in Python), with two additions:

- `--backbone resnet12`: ResNet-12 as `tfmeta.backbones.resnet12` builds it (blocks of
  three bias-free 3x3 convolutions with batch norm and leaky ReLU 0.1, a 1x1 shortcut,
  2x2 max-pool; global average pooling; widths 64-160-320-640), for natural images;
- `--channels 3 --size 64` (Tiny ImageNet's shape) for either backbone.

With `--backbone conv4 --channels 1 --size 28` the model and step are those of
`torch_ref.py`. Prints one line, e.g.
`torch-maml tasks_per_s=9.1 cpu_s_per_task=0.21 first_step_s=0.4 steps=23`: tasks/s and
process CPU seconds per task over a window of `--seconds` after `--warmup` steps, and the
time of the first step.

Example:
    ../torchvenv/bin/python benchmarks/torch_peer.py --algo protonet --backbone resnet12 \
        --channels 3 --size 64 --meta_batch 1 --seconds 20
"""

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--algo", default="maml", choices=["maml", "fomaml", "protonet"])
    p.add_argument("--backbone", default="conv4", choices=["conv4", "resnet12"])
    p.add_argument("--ways", type=int, default=5)
    p.add_argument("--shots", type=int, default=1)
    p.add_argument("--queries", type=int, default=15)
    p.add_argument("--meta_batch", type=int, default=8)
    p.add_argument("--inner_steps", type=int, default=1)
    p.add_argument("--inner_lr", type=float, default=0.4)
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--filters", type=int, default=64, help="conv4's width")
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--device", default="cpu", help="cpu, or cuda on a GPU machine")
    return p.parse_args()


def conv4(channels, size, filters, out):
    layers = []
    for _ in range(4):
        layers += [nn.Conv2d(channels, filters, 3, padding=1),
                   nn.BatchNorm2d(filters, track_running_stats=False), nn.ReLU(), nn.MaxPool2d(2)]
        channels = filters
        size //= 2
    layers.append(nn.Flatten())
    if out:
        layers.append(nn.Linear(filters * size * size, out))
    return nn.Sequential(*layers)


class Block(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(c, cout, 3, padding=1, bias=False)
                                    for c in (cin, cout, cout)])
        self.bns = nn.ModuleList([nn.BatchNorm2d(cout, track_running_stats=False)
                                  for _ in range(3)])
        self.shortcut = nn.Conv2d(cin, cout, 1, bias=False)
        self.shortcut_bn = nn.BatchNorm2d(cout, track_running_stats=False)

    def forward(self, x):
        shortcut = self.shortcut_bn(self.shortcut(x))
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            x = bn(conv(x))
            if i < 2:
                x = F.leaky_relu(x, 0.1)
        return F.max_pool2d(F.leaky_relu(x + shortcut, 0.1), 2)


def resnet12(channels, out, widths=(64, 160, 320, 640)):
    layers = []
    for width in widths:
        layers.append(Block(channels, width))
        channels = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if out:
        layers.append(nn.Linear(channels, out))
    return nn.Sequential(*layers)


def main():
    a = parse_args()
    torch.manual_seed(0)
    torch.set_flush_denormal(True)  # as TensorFlow's CPU threads do (and torch_ref.py)
    out = a.ways if a.algo != "protonet" else 0
    model = (conv4(a.channels, a.size, a.filters, out) if a.backbone == "conv4"
             else resnet12(a.channels, out)).to(a.device)
    synchronize = torch.cuda.synchronize if a.device.startswith("cuda") else (lambda: None)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    b, n, k, q = a.meta_batch, a.ways, a.shots, a.queries
    shape = (a.channels, a.size, a.size)

    def loss_on(params, x, y):
        return F.cross_entropy(functional_call(model, params, (x,)), y)

    def adapt(params, sx, sy):
        fast = params
        for _ in range(a.inner_steps):
            grads = torch.autograd.grad(loss_on(fast, sx, sy), list(fast.values()),
                                        create_graph=a.algo == "maml")
            fast = {name: w - a.inner_lr * g for (name, w), g in zip(fast.items(), grads)}
        return fast

    def step():
        sx = torch.randn(b, n * k, *shape, device=a.device)
        sy = torch.arange(n, device=a.device).repeat_interleave(k).expand(b, -1).contiguous()
        qx = torch.randn(b, n * q, *shape, device=a.device)
        qy = torch.arange(n, device=a.device).repeat_interleave(q).expand(b, -1).contiguous()
        params = dict(model.named_parameters())
        loss = 0
        for t in range(b):
            if a.algo == "protonet":
                prototypes = model(sx[t]).view(n, k, -1).mean(1)
                logits = -torch.cdist(model(qx[t]), prototypes) ** 2
                loss = loss + F.cross_entropy(logits, qy[t])
            else:
                loss = loss + loss_on(adapt(params, sx[t], sy[t]), qx[t], qy[t])
        optimizer.zero_grad()
        (loss / b).backward()
        optimizer.step()

    start = time.perf_counter()
    step()
    synchronize()
    first_step = time.perf_counter() - start
    for _ in range(a.warmup):
        step()
    synchronize()
    steps, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < a.seconds:
        step()
        steps += 1
    synchronize()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"torch-{a.algo}-{a.backbone} tasks_per_s={steps * b / elapsed:.3f} "
          f"cpu_s_per_task={cpu / (steps * b):.4f} first_step_s={first_step:.2f} steps={steps}")


if __name__ == "__main__":
    main()
