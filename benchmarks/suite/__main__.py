import sys

from benchmarks.suite.run import main

sys.exit(main())
