"""``python -m gpulstm``: the same command line as the ``gpulstm`` script."""
import sys

from gpulstm.cli import main

sys.exit(main())
