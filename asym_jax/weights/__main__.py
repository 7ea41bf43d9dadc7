"""``python -m asym_jax.weights``: convert PyTorch checkpoints, list architectures and assets.

    python -m asym_jax.weights convert --arch rrdbnet --src RealESRGAN_x4plus.pth --dst runs/init/rrdb \\
        --num_block=23 --scale=4
    python -m asym_jax.weights archs
    python -m asym_jax.weights assets

Architecture options are given as ``--name=value`` with the reference constructor's argument names
(BasicSR's ``num_feat``, SwinIR's ``embed_dim``, ``depths=(6,6,6,6)`` ...); values are Python literals.
"""

from __future__ import annotations

import argparse
import ast
import sys

from asym_jax.errors import InputError


def _options(extra: list[str]) -> dict:
    options = {}
    for item in extra:
        if not item.startswith("--") or "=" not in item:
            raise InputError(f"architecture options are --name=value, got {item!r}")
        key, value = item[2:].split("=", 1)
        try:
            options[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key] = value
    return options


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asym_jax.weights", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    convert = commands.add_parser("convert", help="PyTorch checkpoint -> Orbax checkpoint with metadata")
    convert.add_argument("--arch", required=True)
    convert.add_argument("--src", required=True, help="PyTorch checkpoint (.pth, .pt, .bin)")
    convert.add_argument("--dst", required=True, help="new folder for the converted checkpoint")
    convert.add_argument("--param_key", default=None, help="entry holding the weights (default: params_ema, "
                         "params, state_dict, model, or the whole file)")
    commands.add_parser("archs", help="list the convertible architectures")
    commands.add_parser("assets", help="list the offline weight assets and whether they are present")
    args, extra = parser.parse_known_args(argv)

    from asym_jax.weights import assets, pytorch
    try:
        if args.command == "archs":
            for name, arch in sorted(pytorch.ARCHS.items()):
                print(f"{name:<12} {arch.description}")
        elif args.command == "assets":
            for name, asset in sorted(assets.ASSETS.items()):
                try:
                    where = str(assets.resolve(name))
                except assets.AssetError as error:
                    where = f"MISSING: {error}"
                print(f"{name:<18} {asset.description}\n{'':<18} {where}")
        else:
            options = _options(extra)
            module, variables = pytorch.from_pytorch(args.arch, args.src, param_key=args.param_key, **options)
            directory = pytorch.save_converted(args.dst, args.arch, options, variables, source=args.src)
            import jax
            count = sum(x.size for x in jax.tree.leaves(variables))
            print(f"converted {args.src} ({args.arch}, {count:,} values) -> {directory}")
        if args.command != "convert" and extra:
            raise InputError(f"unexpected arguments {extra}")
    except (InputError, assets.AssetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
