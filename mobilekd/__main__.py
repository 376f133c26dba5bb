"""python -m mobilekd"""

from mobilekd.cli import main

main()
