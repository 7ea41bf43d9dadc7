"""Training throughput of the networks: forward + backward images/s, JAX vs PyTorch, same machine, same run.

    python benchmarks/models.py                     # CPU sizes: LR 32 / HR 128, batch 2
    python benchmarks/models.py --lr 64 --batch 16  # the training sizes (LR 64 / HR 256), for a GPU

Needs the test extra and BasicSR (see README). Each row builds the JAX module and its PyTorch reference
with the same (random) weights, then times one training step of the network alone: the mean square of
its output, differentiated with respect to every parameter (and, for discriminators, the input image),
in training mode. Times are medians after a warm-up call (compilation excluded). ``--dtype bfloat16``
runs the JAX side in bf16 compute and PyTorch under autocast.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from timing import median_seconds  # noqa: E402

from asym_jax.weights.pytorch import convert_state  # noqa: E402


def _torch_models(torch, lr: int):
    """name -> (torch module, arch name for conversion, options, input side)."""
    from helpers import basicsr_arch

    rrdb = basicsr_arch("rrdbnet_arch")
    swinir = basicsr_arch("swinir_arch")
    disc = basicsr_arch("discriminator_arch")
    hr = 4 * lr
    swin_m = dict(upscale=4, img_size=lr, embed_dim=180, depths=(6,) * 6, num_heads=(6,) * 6, window_size=8,
                  mlp_ratio=2.0, upsampler="pixelshuffle", resi_connection="1conv")
    return {
        "swinir_m x4": (swinir.SwinIR(**swin_m), "swinir", swin_m, lr),
        "rrdbnet x4": (rrdb.RRDBNet(3, 3, scale=4, num_feat=64, num_block=23, num_grow_ch=32), "rrdbnet",
                       dict(scale=4), lr),
        "unet_sn": (disc.UNetDiscriminatorSN(3, 64), "unet_sn", {}, hr),
        "vgg_style": (disc.VGGStyleDiscriminator(3, 64, input_size=128 if hr < 256 else 256), "vgg_style",
                      dict(input_size=128 if hr < 256 else 256), 128 if hr < 256 else 256),
        "patchgan": (_patchgan(torch), "patchgan", {}, hr),
        "vgg16_patch": (_HeadOnTrunk.build(torch, "vgg16"), "vgg16_patch", {}, hr),
        "resnet50_patch": (_HeadOnTrunk.build(torch, "resnet50"), "resnet50_patch", {}, hr),
        "dinov2_s14_patch": (_HeadOnTrunk.build(torch, "dinov2_s14"), "dinov2_s14_patch", {}, 14 * round(hr / 14)),
    }


def _convert(torch, reference, arch: str, options: dict):
    """JAX module and variables holding the reference's weights."""
    from helpers import torch_state
    if not arch.endswith("_patch"):
        return convert_state(arch, torch_state(reference), **options)
    from asym_jax.models import discriminators
    backbone = arch[: -len("_patch")]
    module = discriminators.get(arch)
    _, trunk = convert_state(backbone, {k[len("trunk."):]: v for k, v in torch_state(reference).items()
                                        if k.startswith("trunk.")})
    variables = {"params": {"backbone": trunk["params"],
                            "head_fc1": {"kernel": reference.fc1.weight.detach().numpy().T,
                                         "bias": reference.fc1.bias.detach().numpy()},
                            "head_fc2": {"kernel": reference.fc2.weight.detach().numpy().T,
                                         "bias": reference.fc2.bias.detach().numpy()}}}
    if "batch_stats" in trunk:
        variables["batch_stats"] = {"backbone": trunk["batch_stats"]}
    return module, jax.tree.map(jnp.asarray, variables)


class _HeadOnTrunk:
    """A PyTorch twin of :class:`BackboneDiscriminator` (patch level): trunk features, then the MLP head."""

    @staticmethod
    def build(torch, backbone: str, hidden: int = 256):
        import torchvision
        from transformers import Dinov2Config, Dinov2Model

        nn = torch.nn
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        if backbone == "vgg16":
            trunk, channels = torchvision.models.vgg16(weights=None).features[:30], 512
        elif backbone == "resnet50":
            trunk, channels = torchvision.models.resnet50(weights=None), 2048
            trunk.forward = lambda h, r=trunk: r.layer4(r.layer3(r.layer2(r.layer1(r.maxpool(r.relu(r.bn1(r.conv1(h))))))))
        else:
            trunk = Dinov2Model(Dinov2Config(hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                                             image_size=518, patch_size=14))
            channels = 384

        class Discriminator(nn.Module):
            def __init__(self):
                super().__init__()
                self.trunk, self.fc1, self.fc2 = trunk, nn.Linear(channels, hidden), nn.Linear(hidden, 1)
                self.register_buffer("mean", mean)
                self.register_buffer("std", std)

            def forward(self, x):
                h = (x - self.mean) / self.std
                if backbone == "dinov2_s14":
                    tokens = self.trunk(h).last_hidden_state[:, 1:]
                    f = tokens.reshape(x.shape[0], x.shape[2] // 14, x.shape[3] // 14, channels)
                else:
                    f = self.trunk(h).permute(0, 2, 3, 1)
                return self.fc2(nn.functional.leaky_relu(self.fc1(f), 0.2))

        return Discriminator()


def _patchgan(torch):
    nn = torch.nn
    layers, mult = [nn.Conv2d(3, 64, 4, 2, 1), nn.LeakyReLU(0.2, True)], 1
    for n in range(1, 3):
        prev, mult = mult, min(2 ** n, 8)
        layers += [nn.Conv2d(64 * prev, 64 * mult, 4, 2, 1, bias=False), nn.BatchNorm2d(64 * mult), nn.LeakyReLU(0.2, True)]
    layers += [nn.Conv2d(64 * mult, 512, 4, 1, 1, bias=False), nn.BatchNorm2d(512), nn.LeakyReLU(0.2, True),
               nn.Conv2d(512, 1, 4, 1, 1)]
    model = nn.Module()
    model.model = nn.Sequential(*layers)
    model.forward = lambda x: model.model(x)
    return model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lr", type=int, default=32, help="LR side (HR is 4x)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--only", default="", help="comma-separated row names")
    args = parser.parse_args(argv)

    from helpers import import_torch
    torch = import_torch()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = jnp.bfloat16 if args.dtype == "bfloat16" else jnp.float32
    jax_device = jax.devices()[0]
    print(f"# {platform.node()}: JAX {jax.__version__} on {jax_device.platform} ({jax_device.device_kind}), "
          f"PyTorch {torch.__version__} on {device}; batch {args.batch}, LR {args.lr} / HR {4 * args.lr}, "
          f"{args.dtype}, median of {args.repeats}")
    header = f"{'network':<14} {'input':>9} {'params':>8} {'JAX img/s':>10} {'torch img/s':>12} {'ratio':>6}"
    print(header)
    print("-" * len(header), flush=True)
    rows = _torch_models(torch, args.lr)
    for name, (reference, arch, options, side) in rows.items():
        if args.only and name not in args.only.split(","):
            continue
        torch.manual_seed(0)
        module, variables = _convert(torch, reference, arch, options)
        module = module.clone(dtype=dtype)
        x = jax.random.uniform(jax.random.PRNGKey(0), (args.batch, side, side, 3))
        is_disc = arch in ("unet_sn", "vgg_style", "patchgan") or arch.endswith("_patch")

        def loss(params, image):
            kwargs = {"train": True} if is_disc else {}
            mutable = ["batch_stats"] if "batch_stats" in variables else False
            out = module.apply({**variables, "params": params}, image, mutable=mutable, **kwargs)
            out = out[0] if mutable else out
            return jnp.mean(jnp.square(out.astype(jnp.float32)))

        step = jax.jit(jax.grad(loss, argnums=(0, 1) if is_disc else 0))
        t_jax = median_seconds(lambda: jax.block_until_ready(step(variables["params"], x)), args.repeats)

        reference = reference.to(device).train()
        xt = torch.from_numpy(np.asarray(x)).permute(0, 3, 1, 2).contiguous().to(device)

        def torch_step():
            reference.zero_grad(set_to_none=True)
            image = xt.clone().requires_grad_(is_disc)
            with torch.autocast(device, dtype=torch.bfloat16, enabled=args.dtype == "bfloat16"):
                out = reference(image)
            (out.float() ** 2).mean().backward()
            if device == "cuda":
                torch.cuda.synchronize()

        t_torch = median_seconds(torch_step, args.repeats)
        count = sum(p.numel() for p in reference.parameters())
        print(f"{name:<14} {side:>4}x{side:<4} {count / 1e6:>7.1f}M {args.batch / t_jax:>10.2f} "
              f"{args.batch / t_torch:>12.2f} {t_torch / t_jax:>6.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
