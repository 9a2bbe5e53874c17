"""`python -m nucel <job> ...`, the same as the `nucel` command; also what `accelerate launch -m nucel pretrain ...`
runs on every process."""

from nucel.cli import main

if __name__ == "__main__":
    main()
