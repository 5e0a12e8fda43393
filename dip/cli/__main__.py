import sys

from dip.cli import main

sys.exit(main())
