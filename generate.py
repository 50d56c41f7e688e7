#!/usr/bin/env python
"""python generate.py --flag=value ...: the one command that starts everything.

The flags (python-fire syntax, h2oGPT's names) become a validated Settings object;
bad flags stop here with a one-line message, before any model loads.
"""

from __future__ import annotations

import os
import sys

from src.offline import apply_offline_environment

apply_offline_environment(os.environ)


def entrypoint(*args: object, **flags: object) -> None:
    from src.settings import build_settings
    from src.settings_checks import SettingsError

    if args:
        print(f"generate.py: error: unexpected argument {args[0]!r}; flags look like "
              "--name=value (see --help)", file=sys.stderr)
        sys.exit(2)
    try:
        settings = build_settings(flags, os.environ)
    except SettingsError as exc:
        print(f"generate.py: error: {exc}", file=sys.stderr)
        sys.exit(2)
    from src.app import main

    sys.exit(main(settings))


def run(argv: list[str]) -> None:
    if any(arg in ("-h", "--help", "-help") for arg in argv):
        from src.docgen import help_text

        print(help_text())
        return
    import fire

    fire.Fire(entrypoint, command=argv, name="generate.py")


if __name__ == "__main__":
    run(sys.argv[1:])
