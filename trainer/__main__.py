"""`python -m trainer`, which torchrun needs: torchrun -m trainer train ..."""

from trainer.cli import main

main()
