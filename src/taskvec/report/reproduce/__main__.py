"""``python -m taskvec.report.reproduce --render FOLDER``: see ``render.main``."""

from taskvec.report.reproduce.render import main

main()
