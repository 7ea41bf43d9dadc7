"""``python -m asym_jax.data``: prepare and describe datasets.

    python -m asym_jax.data info --dataset kadid10k --manual_dir ~/data/kadid10k [--data_dir DIR] [--json]
    python -m asym_jax.data info --dataset df2k --config sub_x4 --manual_dir ~/data/DF2K --data_dir DIR
    python -m asym_jax.data list

``info`` prepares the dataset into ``data_dir`` first if needed (reading the official release from
``manual_dir``; SR sets: the form ``--config``, e.g. ``sub_x4``, the one the trainer reads at x4), then prints its examples per split, its score's range and direction, and its origin;
``--json`` prints one JSON object instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

from asym_jax.errors import InputError


def _print_info(info: dict) -> None:
    print(f"{info['dataset']}: {info['title']}")
    print(f"  kind           {info['kind']}")
    for split, count in info["num_examples"].items():
        print(f"  split {split:<12} {count} examples")
    if "score" in info:
        s = info["score"]
        direction = "higher is better" if s["higher_is_better"] else "lower is better"
        print(f"  score          {s['name']}, {direction}, nominal range {s['nominal_range']}, "
              f"observed {[round(v, 4) for v in s['observed_range']]}")
        print(f"  official split {', '.join(info['official_splits']) or 'none (seeded 80/20 splits by content)'}")
        print(f"  official count {info['official_count']}")
    else:
        print(f"  official count {info['official_count']}")
    print(f"  source         {info['source']}")
    print(f"  read from      {info['manual_dir'] or '(embedded)'}")
    print(f"  prepared in    {info['prepared_in']}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asym_jax.data", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="prepare if needed, then describe a dataset")
    info.add_argument("--dataset", required=True)
    info.add_argument("--manual_dir", default=None, help="folder with the official release")
    info.add_argument("--data_dir", default=None, help="where prepared datasets live (TFDS data_dir)")
    info.add_argument("--config", default=None,
                      help="SR sets: the form to prepare (hr, x2/x3/x4, sub_x2/sub_x3/sub_x4); default: the first")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    commands.add_parser("list", help="list the dataset names")
    args = parser.parse_args(argv)

    from asym_jax.data import datasets
    try:
        if args.command == "list":
            for kind, known in datasets.names().items():
                print(f"{kind}: {', '.join(known)}")
            return 0
        with contextlib.redirect_stdout(sys.stderr):  # TFDS prints its preparation messages to stdout
            described = datasets.describe(args.dataset, data_dir=args.data_dir, manual_dir=args.manual_dir,
                                          config=args.config)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(described))
    else:
        _print_info(described)
    return 0


if __name__ == "__main__":
    sys.exit(main())
