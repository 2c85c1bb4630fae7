import sys

from provisioning.lab.cli import main

sys.exit(main())
