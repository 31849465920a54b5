"""`python -m chat`: terminal mode (see chat/cli.py)."""

import sys

from chat.cli import main

sys.exit(main())
