#!/usr/bin/env python
"""Sandtable's command line: ``python manage.py --help``."""

from cli.main import main

if __name__ == "__main__":
    main()
