"""Contact sheet of SynConv identities: human and non-human, frontal and side, mouths open
and closed, rendered at 256x256 from parameters.

    python scripts/make_contact_sheet.py --out data_samples/contact_sheet.png [--seed 0] [--size 256]
"""

from __future__ import annotations

import argparse

import imageio.v3 as iio
import numpy as np

from infp_lab.render import NEUTRAL_PARAMS, PARAM_NAMES, render_frame, sample_appearance
from infp_lab.viz import image_grid

P = {name: i for i, name in enumerate(PARAM_NAMES)}
# (species, side face, expression) per column; each row is a new set of identities.
COLUMNS = [("human", False, "closed"), ("human", False, "open"), ("human", True, "closed"),
           ("human", True, "open"), ("cat", False, "open"), ("robot", True, "open")]
EXPRESSIONS = {
    "closed": {"smile": 0.4},
    "open": {"jaw_open": 0.8, "brow_raise": 0.5},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rows", type=int, default=4)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    images, labels = [], []
    for row in range(args.rows):
        for species, side, expression in COLUMNS:
            if row == args.rows - 1 and species == "human":  # the last row: more non-humans
                species = ("cat", "robot")[len(images) % 2]
            appearance = sample_appearance(rng, species=species, side=side)
            params = NEUTRAL_PARAMS.copy()
            for name, value in EXPRESSIONS[expression].items():
                params[P[name]] = value
            if row % 2 and expression == "closed":
                params[P["blink_left"]] = params[P["blink_right"]] = 1.0  # some blink
            images.append(render_frame(params, appearance, args.size))
            labels.append(f"{species} yaw{appearance.base_yaw:+.0f} {expression}")
    iio.imwrite(args.out, image_grid(images, columns=len(COLUMNS), labels=labels))
    print(f"wrote {args.out} ({len(images)} identities at {args.size}x{args.size})")


if __name__ == "__main__":
    main()
