"""tests/unit/roles: roleplay (the helpers of these tests) importable."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
