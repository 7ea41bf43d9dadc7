"""Training images/s of the NR-IQA model: the iqa_nr job's train step vs a PyTorch model of the same
backbone and head, same machine, same run.

    python benchmarks/iqa_nr.py                                   # CPU sizes: AlexNet, 96-px crops, batch 8
    python benchmarks/iqa_nr.py --backbone resnet50 --crop 384 --batch 16 --steps 20   # KonIQ recipe, GPU

The JAX side is the job's own step (:func:`asym_jax.train.iqa_nr.make_steps`: uint8 batch in, the loss of
``--loss``, AdamW, batch norms updated in training mode); the PyTorch side is the torchvision trunk up to the
same tap (AlexNet ``features[:12]`` = relu5, VGG-16 ``features[:30]`` = relu5_3, ResNet-50 up to layer4),
ImageNet normalisation, mean pooling, ``Linear(C, hidden)`` -> LeakyReLU(0.2) -> ``Linear(hidden, 1)``, the
same loss and ``torch.optim.AdamW`` with the same settings. Both start from the same weights (the PyTorch
initialisation converted to JAX); the first scores are compared before timing. Both sides get the same
uint8 batches from host memory every step (the copy to the device is timed). Times are medians of
``--repeats`` runs of ``--steps`` steps after a warm-up run (compilation excluded). PyTorch runs without
TF32 and JAX at its default precision for training (as the job trains). Needs the test extra (torch).
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

TRUNKS = {"alexnet": "features[:12]", "vgg16": "features[:30]", "resnet50": "all but avgpool and fc"}


def _torch_model(torch, backbone: str, hidden: int):
    import torchvision

    nn = torch.nn
    if backbone == "alexnet":
        trunk, channels = torchvision.models.alexnet().features[:12], 256
    elif backbone == "vgg16":
        trunk, channels = torchvision.models.vgg16().features[:30], 512
    else:
        trunk, channels = nn.Sequential(*list(torchvision.models.resnet50().children())[:-2]), 2048

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.trunk = trunk
            self.fc1, self.fc2 = nn.Linear(channels, hidden), nn.Linear(hidden, 1)
            self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

        def forward(self, x):  # uint8 NCHW
            h = self.trunk((x.float() / 255.0 - self.mean) / self.std).mean(dim=(2, 3))
            return self.fc2(nn.functional.leaky_relu(self.fc1(h), 0.2))[:, 0]

    return Model()


def _jax_variables(torch_model, backbone: str, init_variables):
    """The NR model's variables with the PyTorch model's weights (trunk through the project's converter)."""
    import jax.numpy as jnp

    from asym_jax.weights.pytorch import convert_state

    state = {k: v.detach().cpu().numpy() for k, v in torch_model.trunk.state_dict().items()}
    if backbone == "resnet50":  # the Sequential renumbers torchvision's named children
        names = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"]
        state = {names[int(k.split(".", 1)[0])] + "." + k.split(".", 1)[1]: v for k, v in state.items()}
    _, trunk = convert_state(backbone, state)
    params = dict(init_variables["params"])
    params["backbone"] = trunk["params"]
    for name, layer in (("head_fc1", torch_model.fc1), ("head_fc2", torch_model.fc2)):
        params[name] = {"kernel": jnp.asarray(layer.weight.detach().cpu().numpy().T),
                        "bias": jnp.asarray(layer.bias.detach().cpu().numpy())}
    variables = {"params": params}
    if "batch_stats" in trunk:
        variables["batch_stats"] = {"backbone": trunk["batch_stats"]}
    return variables


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="alexnet", choices=sorted(TRUNKS))
    parser.add_argument("--crop", type=int, default=96)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--loss", default="mse", choices=("mse", "l1"))
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--steps", type=int, default=5, help="steps per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"),
                        help="JAX compute dtype (PyTorch under autocast with bfloat16)")
    args = parser.parse_args(argv)

    import jax
    import jax.numpy as jnp
    import numpy as np
    from helpers import import_torch, load_config
    from timing import median_seconds

    from asym_jax.train import iqa_nr
    from asym_jax.train.state import make_optimizer

    torch = import_torch()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)

    config = load_config("iqa_nr.py", "ranking")
    config.backbone, config.hidden, config.loss, config.dtype = args.backbone, args.hidden, args.loss, args.dtype
    config.batch_size = args.batch
    config.optimizer.lr, config.optimizer.weight_decay = args.lr, 0.01
    config.optimizer.warmup_steps = 0
    tx, _ = make_optimizer(config.optimizer, 1000)
    train_step, predict = iqa_nr.make_steps(config, tx)
    init = iqa_nr.build_model(config).init(jax.random.PRNGKey(0), jnp.zeros((1, args.crop, args.crop, 3)))

    model = _torch_model(torch, args.backbone, args.hidden).to(device)
    variables = _jax_variables(model, args.backbone, init)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, args.batch, args.crop, args.crop, 3), dtype=np.uint8)
    targets = rng.uniform(size=(4, args.batch)).astype(np.float32)

    # Same model: the scores of the first batch (evaluation mode) agree.
    model.eval()
    with torch.no_grad():
        theirs = model(torch.from_numpy(images[0]).permute(0, 3, 1, 2).to(device)).cpu().numpy()
    state = {"step": jnp.asarray(0, jnp.int32), "params": variables["params"],
             "batch_stats": variables.get("batch_stats", {}), "opt_state": tx.init(variables["params"])}
    ours = np.asarray(predict(state, images[0].astype(np.float32) / 255.0))
    gap = float(np.max(np.abs(ours - theirs)))
    model.train()

    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(config.optimizer.b1, config.optimizer.b2),
                                  eps=1e-8, weight_decay=0.01)  # optax.adamw's eps
    criterion = torch.nn.MSELoss() if args.loss == "mse" else torch.nn.L1Loss()
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=args.dtype == "bfloat16")

    def torch_run():
        for k in range(args.steps):
            x = torch.from_numpy(images[k % 4]).to(device, non_blocking=True).permute(0, 3, 1, 2)
            t = torch.from_numpy(targets[k % 4]).to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                loss = criterion(model(x).float(), t)
            loss.backward()
            optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()
        return loss

    def jax_run():
        nonlocal state
        for k in range(args.steps):
            state, loss = train_step(state, {"image": jax.device_put(images[k % 4]),
                                             "target": jax.device_put(targets[k % 4])})
        return jax.block_until_ready(loss)

    jax_s = median_seconds(jax_run, args.repeats)
    torch_s = median_seconds(torch_run, args.repeats)
    n = args.steps * args.batch
    accelerator = jax.devices()[0]
    print(f"# JAX {jax.__version__} on {accelerator.platform} ({accelerator.device_kind}), PyTorch "
          f"{torch.__version__} on {device}; {args.backbone} ({TRUNKS[args.backbone]}) + head {args.hidden}, "
          f"{args.crop}-px crops, batch {args.batch}, {args.loss}, {args.dtype}")
    print(f"# first-batch scores, max |JAX - PyTorch| = {gap:.2e}")
    print("| backbone | crop | batch | dtype | JAX img/s | PyTorch img/s | JAX / PyTorch |")
    print("|---|---:|---:|---|---:|---:|---:|")
    print(f"| {args.backbone} | {args.crop} | {args.batch} | {args.dtype} | {n / jax_s:.1f} | {n / torch_s:.1f} | "
          f"{torch_s / jax_s:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
