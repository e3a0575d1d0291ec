import sys

from apiserver.ctl import main

sys.exit(main())
