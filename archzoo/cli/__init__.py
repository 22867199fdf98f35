"""archzoo's command line: a thin layer over the library. Each module here that defines
``register(subparsers)`` adds its sub-commands."""
