import sys

from uqenergy.cli import main

sys.exit(main())
