"""``python -m audiostory_core.train CONFIG.yaml [--max-steps N] [--seed S] [--resume latest|DIR]``, also under
``accelerate launch -m`` and ``torchrun -m``; ``python -m audiostory_core.train data build FOLDER`` builds a
manifest."""
from .cli import main

if __name__ == "__main__":
    main()
