"""``python -m taskvec``: the ``taskvec`` command, as launchers run it
(``torchrun --nproc-per-node N -m taskvec run ...``, ``accelerate launch -m taskvec ...``)."""

from taskvec.cli import main

main()
