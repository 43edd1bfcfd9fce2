"""`python -m gemb2 ...`: the `gemb2` command (also under torchrun: `torchrun --nproc-per-node N -m gemb2 train R`)."""

from gemb2.cli.main import main

if __name__ == "__main__":
    main()
