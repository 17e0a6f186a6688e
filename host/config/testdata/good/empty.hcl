# An empty file: no services, everything else defaulted.
